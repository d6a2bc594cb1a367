export { LOG_EVENT_NAMES, isLogEventName, type LogEventName } from './events.js';
export {
  LOG_EXPORT_FIELDS,
  LOG_EXPORT_FORMATS,
  LOG_EXPORT_MEDIA_TYPES,
  csvCell,
  formatLogsCsv,
  formatLogsJson,
  parseLogQuery,
  type LogExportField,
  type LogExportFormat,
  type LogExportRecord,
  type LogQueryParams,
  type ParsedLogQuery,
} from './export.js';
