// storage/images: signed image manifests, their store, image import/export and chunk GC.
// The public surface of the folder; other folders import only from here.
//
// Push (what `PUT /v1/images/{name}/{tag}` does):
//   const hold = pins.hold();                                   // GC must not eat our chunks
//   try {
//     const r = await importImage(body, chunkStore, { pin: hold, maxBytes });
//     const manifest = await signManifest(
//       { name, tag, ...r, createdAt: Date.now(), version: await manifests.nextVersion(name, tag),
//         placement: { sites, copies } },
//       peerKey,
//     );
//     await manifests.put(manifest);                            // verified, durable
//   } finally { hold.release(); }
//
// Pull (replication): decodeManifest(bytes, limit) -> pins.hold(hashes) -> missingChunks() ->
// fetch each, chunkStore.put(hash, bytes) (ChunkHashMismatchError: try another peer) ->
// manifests.put(manifest) -> release. Serve: chunkStore.get(hash) (ChunkCorruptError: it was
// quarantined; answer "not found" and refetch).
// GC: collectGarbage(chunkStore, manifests, { pins }).
export {
  DEFAULT_GC_GRACE_MS,
  PinSet,
  collectGarbage,
  type ChunkReferences,
  type GcOptions,
  type GcResult,
  type PinHold,
} from './gc.js';
export {
  DEFAULT_EXPORT_READ_AHEAD,
  DEFAULT_IMPORT_CONCURRENCY,
  exportImage,
  importImage,
  localCopy,
  missingChunks,
  type ExportOptions,
  type ImportOptions,
  type ImportResult,
  type LocalCopy,
} from './import.js';
export {
  MANIFEST_DOMAIN,
  MANIFEST_FORMAT,
  MAX_CHUNKS,
  MAX_CHUNK_SIZE,
  MAX_COPIES,
  MAX_MANIFEST_BYTES,
  MAX_SITES,
  checkUnsignedManifest,
  compareManifests,
  decodeManifest,
  encodeManifest,
  manifestByteLength,
  normalizePlacement,
  signManifest,
  verifyManifest,
  type ChunkRef,
  type Manifest,
  type ManifestDraft,
  type Placement,
  type UnsignedManifest,
} from './manifest.js';
export {
  DEFAULT_KEEP_VERSIONS,
  MANIFEST_NAMESPACE,
  MAX_VERSION_AHEAD_MS,
  ManifestStore,
  maxAcceptedVersion,
  type ImageHead,
  type ManifestStoreOptions,
  type PutResult,
  type TombstoneResult,
} from './manifest-store.js';
export {
  MAX_NAME_LENGTH,
  MAX_TAG_LENGTH,
  imageNameProblem,
  imageTagProblem,
  isValidImageName,
  isValidImageTag,
  isValidSiteName,
  parseImageRef,
  validateImageName,
  validateImageTag,
  validateSiteName,
} from './names.js';
export { MAX_PEER_ID_LENGTH, SIGNATURE_BYTES, peerIdOf, publicKeyOf } from './signing.js';
export {
  MAX_TOMBSTONE_BYTES,
  TOMBSTONE_DOMAIN,
  decodeImageRecord,
  decodeTombstone,
  encodeTombstone,
  signTombstone,
  verifyImageRecord,
  verifyTombstone,
  type ImageRecord,
  type Tombstone,
  type UnsignedTombstone,
} from './tombstone.js';
