// Verify a record in the browser, trusting nothing this page says.
//
// Fetches the record's log entry and inclusion proof (GET /api/v1/records/<index>)
// and the log's verifier key (GET /api/v1/log, unless the reader pastes the key
// they got out of band), then with WebCrypto:
//
//   1. checks the checkpoint's Ed25519 signature (c2sp.org/signed-note);
//   2. recomputes the leaf hash, SHA-256(0x00 || entry) (RFC 9162 §2.1.1);
//   3. walks the inclusion proof to the root (RFC 9162 §2.1.3.2) and compares
//      it with the signed checkpoint's root hash (c2sp.org/tlog-checkpoint);
//   4. checks the platform's Ed25519 signature over "mdl/record/v1\n" followed
//      by the record's exact bytes, sliced out of the canonical entry
//      {"logged_at":…,"record":<record>,"signature":…} rather than re-serialised.
//
// With ?tamper=proof in the page's address, one bit of the first proof hash is
// flipped before step 3, to show that a tampered proof fails.
//
// Every string from the server is put in the page with textContent, never as HTML.
//
// For keyboard and screen-reader users (WCAG 2.4.3, 4.1.3): while the check
// runs, the button stays focusable (aria-disabled, not disabled, which
// would drop focus to the page's body); when it ends, focus moves to the
// result, which is a live region, and the result is scrolled into view.
// The steps are not a live region themselves: read as they arrive, seven
// of them would bury the result.
"use strict";

(function () {
  const panel = document.getElementById("verify");
  if (!panel) return;
  const controls = panel.querySelector(".verify-controls");
  const button = document.getElementById("verify-button");
  const vkeyInput = document.getElementById("verify-vkey");
  const list = document.getElementById("verify-steps");
  const result = document.getElementById("verify-result");
  const tamper = panel.dataset.tamper === "proof";
  const utf8 = new TextEncoder();

  /** A check that failed: the record, proof or signature is not what it should be. */
  class Failure extends Error {
    constructor(message, detail) {
      super(message);
      this.detail = detail;
    }
  }
  /** A check that could not run (network, browser support): nothing was proved either way. */
  class Unable extends Error {}

  // Bytes ------------------------------------------------------------------

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function b64encode(bytes) {
    return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
  }

  /** Decode standard padded base64 exactly: any other spelling is rejected. */
  function b64decode(text, what) {
    if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      throw new Failure(`${what} is not base64`);
    }
    const bin = atob(text);
    const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    if (b64encode(out) !== text) throw new Failure(`${what} is not canonical base64`);
    return out;
  }

  function lastIndexOfBytes(hay, needle) {
    for (let i = hay.length - needle.length; i >= 0; i--) {
      if (needle.every((b, j) => hay[i + j] === b)) return i;
    }
    return -1;
  }

  // Hashes and signatures -----------------------------------------------------

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }

  const recordHash = (entry) => sha256(Uint8Array.of(0x00), entry);
  const nodeHash = (left, right) => sha256(Uint8Array.of(0x01), left, right);

  async function ed25519Verify(publicKey, signature, message) {
    let key;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      throw new Unable(`this browser cannot check Ed25519 signatures with WebCrypto (${e.message})`);
    }
    if (signature.length !== 64) return false;
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  /** The root hash an inclusion proof leads to: RFC 9162 §2.1.3.2, step by step. */
  async function rootFromInclusionProof(leafIndex, treeSize, leaf, proof) {
    if (leafIndex >= treeSize) throw new Failure("the entry's index is not inside the tree");
    let fn = leafIndex;
    let sn = treeSize - 1n;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Failure("the proof has more hashes than the tree has levels");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Failure("the proof has fewer hashes than the tree needs");
    return r;
  }

  // Formats -------------------------------------------------------------------

  /** A verifier key: <name>+<hex key ID>+<base64(0x01 || Ed25519 public key)> (c2sp.org/signed-note). */
  async function parseVerifierKey(text) {
    // The name holds no "+" and the key ID is hex; the base64 key may hold "+".
    const m = /^([^+]+)\+([^+]*)\+(.*)$/s.exec(text.trim());
    if (!m) throw new Failure("the verifier key is not name+keyid+key");
    const [, name, keyIdHex, keyB64] = m;
    if (!name || /\s/.test(name)) throw new Failure("the verifier key's name is not valid");
    if (!/^[0-9a-f]{8}$/.test(keyIdHex)) throw new Failure("the verifier key's ID is not 8 lower-case hex digits");
    const key = b64decode(keyB64, "the verifier key");
    if (key.length !== 33 || key[0] !== 0x01) throw new Failure("the verifier key is not an Ed25519 key");
    const keyId = (await sha256(utf8.encode(name + "\n"), key)).slice(0, 4);
    if (hex(keyId) !== keyIdHex) throw new Failure("the verifier key's ID does not match its key");
    return { name, keyId, publicKey: key.slice(1), text: text.trim() };
  }

  /** A signed note: text, a blank line, then lines "— <name> base64(key ID || signature)". */
  function parseNote(note) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new Failure("the checkpoint has no signature block");
    const text = note.slice(0, split + 1);
    const block = note.slice(split + 2);
    if (!block.endsWith("\n")) throw new Failure("the checkpoint's signature block does not end in a newline");
    const signatures = block
      .slice(0, -1)
      .split("\n")
      .map((line) => {
        const m = /^\u2014 (\S+) (\S+)$/.exec(line);
        if (!m) throw new Failure("the checkpoint has a malformed signature line");
        const raw = b64decode(m[2], "a checkpoint signature");
        if (raw.length < 5) throw new Failure("a checkpoint signature is too short");
        return { name: m[1], keyId: raw.slice(0, 4), signature: raw.slice(4) };
      });
    return { text, signatures };
  }

  /** The checkpoint body: origin, tree size, root hash, then optional extension lines. */
  function parseCheckpoint(text) {
    const lines = text.split("\n");
    if (lines.length < 4 || !/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) {
      throw new Failure("the checkpoint is not origin, size and root hash");
    }
    const root = b64decode(lines[2], "the checkpoint's root hash");
    if (root.length !== 32) throw new Failure("the checkpoint's root hash is not 32 bytes");
    return { origin: lines[0], size: BigInt(lines[1]), root };
  }

  /** The record's exact bytes inside the canonical entry, between "record": and ,"signature":. */
  function recordBytes(entry) {
    const head = /^\{"logged_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z","record":/;
    const prefix = head.exec(new TextDecoder("latin1").decode(entry.slice(0, 64)));
    // The signature object is the entry's last member and holds no "signature"
    // key, so the last occurrence of ,"signature": is the entry's own.
    const end = lastIndexOfBytes(entry, utf8.encode(',"signature":'));
    if (!prefix || end < prefix[0].length) throw new Failure("the entry is not a platform record");
    return entry.slice(prefix[0].length, end);
  }

  // The steps -------------------------------------------------------------------

  async function fetchJSON(url) {
    let resp;
    try {
      resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (e) {
      throw new Unable(`could not fetch ${url}: ${e.message}`);
    }
    if (!resp.ok) throw new Unable(`${url} answered ${resp.status}`);
    return resp.json();
  }

  const MARKS = { ok: ["✓", "Passed: "], fail: ["✗", "Failed: "], note: ["!", "Note: "] };

  /** Add a step to the list: status "ok", "fail" or "note", in words as well as a mark and colour. */
  function report(status, text, detail) {
    const li = document.createElement("li");
    li.className = status;
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = MARKS[status][0];
    const word = document.createElement("strong");
    word.textContent = MARKS[status][1];
    li.append(mark, " ", word, text);
    if (detail) {
      const code = document.createElement("code");
      code.className = "hash";
      code.textContent = detail;
      li.append(" ", code);
    }
    list.append(li);
  }

  /** Run one check; a failure is reported and remembered, and the next check still runs. */
  async function step(state, needs, fn) {
    if (needs.some((k) => state[k] === undefined)) {
      report("fail", "not checked, because an earlier step failed.");
      state.failed = true;
      return;
    }
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof Failure || e instanceof Unable)) throw e;
      if (e instanceof Unable) report("fail", `could not check: ${e.message}.`);
      else report("fail", e.detail ? e.message : `${e.message}.`, e.detail);
      state.failed = true;
    }
  }

  async function verify() {
    const s = { failed: false };
    const index = BigInt(panel.dataset.index);
    await step(s, [], async () => {
      s.rec = await fetchJSON(panel.dataset.recordUrl);
      s.entry = b64decode(s.rec.entry, "the entry");
      s.proof = s.rec.inclusion_path.map((h, i) => b64decode(h, `proof hash ${i + 1}`));
      report(
        "ok",
        `fetched log entry ${index} (${s.entry.length} bytes) and an inclusion proof of ${s.proof.length} ` +
          `hashes against the checkpoint of tree size ${s.rec.checkpoint.tree_size}.`,
      );
    });
    await step(s, [], async () => {
      const pasted = vkeyInput.value.trim();
      const text = pasted || (await fetchJSON(panel.dataset.logUrl)).verifier_key;
      s.vkey = await parseVerifierKey(String(text));
      const source = pasted ? "the key you entered" : "the key this server publishes: compare it with the one you got out of band";
      report("ok", `the log's verifier key is well formed (${source}):`, s.vkey.text);
    });
    await step(s, ["rec", "vkey"], async () => {
      const note = parseNote(s.rec.checkpoint.signed_note);
      const sig = note.signatures.find((x) => x.name === s.vkey.name && equal(x.keyId, s.vkey.keyId));
      if (!sig) throw new Failure("the checkpoint has no signature by the log's key");
      if (!(await ed25519Verify(s.vkey.publicKey, sig.signature, utf8.encode(note.text)))) {
        throw new Failure("the checkpoint's signature does not verify with the log's key");
      }
      const cp = parseCheckpoint(note.text);
      if (cp.origin !== s.vkey.name) throw new Failure(`the checkpoint is for another log (${cp.origin})`);
      s.cp = cp;
      report("ok", `the checkpoint is signed by the log's key (Ed25519): ${cp.origin}, tree size ${cp.size}, root hash`, b64encode(cp.root));
    });
    await step(s, ["rec", "entry"], async () => {
      const obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(s.entry));
      const rec = obj.record || {};
      if (rec.platform !== panel.dataset.platform || rec.record_id !== panel.dataset.recordId) {
        throw new Failure("the entry holds another record than this page shows");
      }
      if (BigInt(s.rec.leaf_index) !== index) throw new Failure("the server answered for another entry");
      s.signature = obj.signature;
      report("ok", `the entry holds this page's record: ${rec.platform} / ${rec.record_id}.`);
    });
    await step(s, ["rec", "entry"], async () => {
      s.leaf = await recordHash(s.entry);
      if (b64encode(s.leaf) !== s.rec.leaf_hash) throw new Failure("the entry's hash is not the leaf hash the server gave");
      report("ok", "the entry's leaf hash, SHA-256(0x00 || entry), is", b64encode(s.leaf));
    });
    await step(s, ["proof", "leaf", "cp"], async () => {
      let proof = s.proof.map((h) => h.slice());
      let leaf = s.leaf;
      if (tamper && proof.length > 0) {
        proof[0][0] ^= 0x01;
        report("note", "tampering demonstration: flipped the lowest bit of the first proof hash, now", b64encode(proof[0]));
      } else if (tamper) {
        leaf = leaf.slice();
        leaf[0] ^= 0x01;
        report("note", "tampering demonstration: the proof is empty, so one bit of the leaf hash was flipped instead.");
      }
      if (s.cp.size !== BigInt(s.rec.checkpoint.tree_size)) throw new Failure("the proof is for another tree size than the checkpoint");
      const root = await rootFromInclusionProof(index, s.cp.size, leaf, proof);
      if (!equal(root, s.cp.root)) {
        throw new Failure("the inclusion proof does not lead to the signed root hash; it leads to", b64encode(root));
      }
      report("ok", `the inclusion proof leads from entry ${index} to the signed root hash (${proof.length} hashes).`);
    });
    await step(s, ["rec", "entry", "signature"], async () => {
      const key = b64decode(s.rec.key.public_key, "the platform's public key");
      const keyId = hex((await sha256(key)).slice(0, 8));
      if (keyId !== s.rec.key.key_id || keyId !== s.signature.key_id) {
        throw new Failure("the platform key's ID does not match the key that signed the record");
      }
      const message = concat(utf8.encode("mdl/record/v1\n"), recordBytes(s.entry));
      const sig = b64decode(s.signature.value, "the platform's signature");
      if (!(await ed25519Verify(key, sig, message))) {
        throw new Failure("the platform's signature does not verify");
      }
      const revoked = s.rec.key.revoked_from ? ` (the key was revoked from ${s.rec.key.revoked_from})` : "";
      report("ok", `the platform's signature over the record verifies with its key ${keyId}${revoked}.`);
    });
    return s.failed;
  }

  let running = false;

  async function run() {
    if (running) return;
    running = true;
    button.setAttribute("aria-disabled", "true");
    list.replaceChildren();
    list.setAttribute("aria-busy", "true");
    result.className = "result";
    result.textContent = "Checking…";
    let failed = true;
    try {
      if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
        throw new Unable("WebCrypto needs a secure context: open this page over https");
      }
      failed = await verify();
    } catch (e) {
      report("fail", `could not check: ${e.message}.`);
    }
    list.removeAttribute("aria-busy");
    result.className = failed ? "result fail" : "result ok";
    result.textContent = failed
      ? `✗ Verification failed${tamper ? ", as it must when the proof is tampered with" : ""}: see the steps marked “Failed” above.`
      : "✓ Verified: this record is in the log, under a checkpoint signed by the log's key, and the platform signed it.";
    button.removeAttribute("aria-disabled");
    running = false;
    result.focus({ preventScroll: true });
    result.scrollIntoView({ block: "center" });
  }

  // The pure parts, for tests and for readers who want to check them in the console.
  window.ledgerVerify = Object.freeze({ rootFromInclusionProof, parseVerifierKey, parseNote, parseCheckpoint, recordBytes, Failure });

  controls.hidden = false;
  button.addEventListener("click", run);
})();
