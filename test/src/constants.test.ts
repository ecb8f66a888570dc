import * as constants from '../../src/constants.js'
import { describeDocumentedDefaults } from '../helpers/documented-defaults.js'

describeDocumentedDefaults('room node', [new URL('../../src/index.ts', import.meta.url), new URL('../../src/room-node.ts', import.meta.url)], constants)
