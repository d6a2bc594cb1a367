export { PeerDiscovery, PEER_SERVICE_TYPE, DEFAULT_PEER_TTL_MS, type PeerDiscoveryEvents, type PeerDiscoveryOptions } from './peer-discovery.js';
export {
  acceptRecord,
  createRecordStore,
  listPeers,
  removeRecord,
  sweepRecords,
  touchRecord,
  validateRecord,
  DEFAULT_MAX_RECORDS,
  DEFAULT_MAX_ADDRESSES_PER_RECORD,
  type AcceptResult,
  type DiscoveredPeer,
  type PeerAddress,
  type RawService,
  type RecordStore,
} from './discovery-records.js';
export {
  candidateFrom,
  findServers,
  DEFAULT_FIND_SERVER_SETTLE_MS,
  DEFAULT_FIND_SERVER_TIMEOUT_MS,
  MAX_SERVER_CANDIDATES,
  type FindServerOptions,
  type RawServerAnswer,
  type ServerCandidate,
} from './server-finder.js';
