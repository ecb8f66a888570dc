import * as constants from '../../relay/src/constants.js'
import { describeDocumentedDefaults } from '../helpers/documented-defaults.js'

// options are documented in index.ts (the public types) and resolved in relay.ts
describeDocumentedDefaults('relay', [new URL('../../relay/src/index.ts', import.meta.url), new URL('../../relay/src/relay.ts', import.meta.url)], constants)
describeDocumentedDefaults('relay admin page', new URL('../../relay/src/admin-page.ts', import.meta.url), constants)
