import * as constants from '../../relay/src/constants.js'
import { describeDocumentedDefaults } from '../helpers/documented-defaults.js'

describeDocumentedDefaults('relay', new URL('../../relay/src/index.ts', import.meta.url), constants)
