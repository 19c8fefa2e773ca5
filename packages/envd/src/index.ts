export { ENVD_VERSION } from './version.js'
