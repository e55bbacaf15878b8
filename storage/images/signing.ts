// Domain-separated Ed25519 signatures by libp2p peer keys. The signer is named by its peer id
// string; an Ed25519 peer id embeds the public key, so anyone can verify without a key lookup.
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey, PublicKey } from '@libp2p/interface';
import { InvalidManifestError, ManifestSignatureError } from '../errors.js';

/** Ed25519 signatures are 64 bytes. */
export const SIGNATURE_BYTES = 64;
/** Longest peer id string accepted. Unit: characters (an Ed25519 peer id is 52 or 53). */
export const MAX_PEER_ID_LENGTH = 128;

/** The peer id string of a private key (what goes in `creator`). */
export function peerIdOf(privateKey: PrivateKey): string {
  return peerIdFromPrivateKey(privateKey).toString();
}

/** The Ed25519 public key embedded in a peer id string; InvalidManifestError if there is none. */
export function publicKeyOf(peerId: string, field = 'creator'): PublicKey {
  let key: PublicKey | undefined;
  try {
    const id = peerIdFromString(peerId);
    key = id.type === 'Ed25519' ? id.publicKey : undefined;
  } catch (err) {
    throw new InvalidManifestError(field, 'is not a libp2p peer id', { cause: err });
  }
  if (key === undefined) throw new InvalidManifestError(field, 'must be an Ed25519 peer id');
  return key;
}

/** The bytes actually signed: `domain`, a newline, then the payload. */
function signedBytes(domain: string, payload: Uint8Array): Uint8Array {
  const d = new TextEncoder().encode(`${domain}\n`);
  const out = new Uint8Array(d.length + payload.length);
  out.set(d, 0);
  out.set(payload, d.length);
  return out;
}

/** Signs `payload` under `domain` with an Ed25519 key. */
export async function signPayload(
  domain: string,
  payload: Uint8Array,
  privateKey: PrivateKey,
): Promise<Uint8Array> {
  if (privateKey.type !== 'Ed25519')
    throw new InvalidManifestError('creator', 'the signing key must be an Ed25519 key');
  return new Uint8Array(await privateKey.sign(signedBytes(domain, payload)));
}

/** Throws ManifestSignatureError unless `signature` is `signer`'s signature of the payload. */
export async function verifyPayload(
  domain: string,
  payload: Uint8Array,
  signature: Uint8Array,
  signer: string,
): Promise<void> {
  const key = publicKeyOf(signer);
  let ok = false;
  try {
    ok =
      signature.length === SIGNATURE_BYTES &&
      (await key.verify(signedBytes(domain, payload), signature));
  } catch (err) {
    throw new ManifestSignatureError(`the signature of ${signer} could not be checked`, {
      cause: err,
    });
  }
  if (!ok) throw new ManifestSignatureError(`the signature does not verify against ${signer}`);
}
