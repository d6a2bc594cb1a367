export { startAdminApi, type AdminApi, type AdminApiOptions } from './admin-api.js';
export { AdminClient, type AdminClientOptions, type LogExportFormat, type LogExportRequest } from './admin-client.js';
export { addAdminCommands, type AdminCommandIo } from './admin-commands.js';
export { ADMIN_PORT_FILE, MAX_ADMIN_BODY_BYTES } from './admin-protocol.js';
export { ADMIN_TOKEN_FILE, loadOrCreateAdminToken } from './admin-token.js';
export { ADMIN_CERT_FILE, ADMIN_KEY_FILE, createSelfSignedCertificate, loadOrCreateAdminTls, type AdminTls } from './certificate.js';
export type { AdminBackend, AdminSessionView, AdminUserView } from './backend.js';
