/**
 * Resources and their versions in the database, one file per concern under ./store/: the hot
 * reads and record cache (records.ts), the list engine (lists.ts), writes inside a write job
 * (writes.ts) and purging (purge.ts). Importers use this module; the files under ./store/ also
 * share a few internals with each other that are not exported from here.
 */
export {
  findResource,
  findSecretByName,
  listActiveSecrets,
  newResourceId,
  openCurrentValue,
  openValue,
  readValue,
  resourceState,
  valueLocation,
  type ActiveSecret,
  type ResourcePlace,
  type ResourceRecord,
  type ResourceState,
} from './store/records.ts';
export {
  connectionOf,
  findVersion,
  listResourceIds,
  listResources,
  listVersions,
  resourcesByIds,
  resourcesChanged,
  resourcesGeneration,
  type ResourceFilters,
} from './store/lists.ts';
export {
  insertResource,
  restoreVersion,
  softDeleteResource,
  undeleteResource,
  updateResource,
} from './store/writes.ts';
export { purgeDeletedResources } from './store/purge.ts';
