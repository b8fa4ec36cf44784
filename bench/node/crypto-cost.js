#!/usr/bin/env node
// crypto-cost.js: the CPU cost of connect-redis-crypto's encryption (write)
// and decryption (read) of a session that carries a user ID, measured
// in-process, without Redis, by calling the package's real code.
//
//   cd bench/node && npm ci && node crypto-cost.js
//
// The JSON result goes to stdout and a one-line summary to stderr. By default
// the script measures in 3 separate child processes, one after the other, and
// reports the median of the 3 (and each run). Options:
//   --runs N       child processes to run (default 3; the median is reported)
//   --min-time S   seconds each timed loop must last at least (default 2)
//   --warmup S     seconds of warm-up before each timed loop (default 0.5)
//
// What is called. connect-redis-crypto exports a factory taking
// express-session and returning its RedisStore class. We build that class for
// real and hand it, in place of a Redis client, a stub that keeps values in a
// Map and calls back synchronously. So a write is the package's own
// RedisStore#set and a read its own RedisStore#get, exactly as
// express-session calls them, and the only thing not measured is the Redis
// round trip. The crypto lives in those methods
// (node_modules/connect-redis-crypto/lib/connect-redis-crypto.js):
//
//   set(sid, sess, cb = noop) {
//     let args = [this.prefix + sid]
//     if (this.secret) {
//       this.kruptein.set(this.secret, sess, (err, ct) => {
//         if (err) return cb(err)
//         sess = JSON.parse(ct)
//       })
//     }
//     let value
//     try {
//       value = this.serializer.stringify(sess)
//     ...
//     this.client.set(args, cb)
//
//   get(sid, cb = noop) {
//     let key = this.prefix + sid
//     this.client.get(key, (err, data) => {
//       ...
//       if (this.secret) {
//         this.kruptein.get(this.secret, data, (err, pt) => {
//           if (err) return cb(err)
//           data = pt
//         })
//       }
//       let result
//       try {
//         result = this.serializer.parse(data)
//
// and kruptein (node_modules/kruptein/lib/kruptein.js), whose Kruptein#set
// and Kruptein#get call, per operation, Kruptein#_derive_key:
//
//   key = this.crypto.pbkdf2Sync(secret, salt, 15000, this._key_size, this.hashing);
//
// with a fresh crypto.randomBytes(128) salt on every write and the stored
// salt on every read; then AES-256-GCM (Kruptein#_encrypt / #_decrypt) and an
// HMAC-SHA512 of the ciphertext under the derived key (Kruptein#_digest); on
// a write also an extra HMAC-SHA512, keyed by 128 random bytes, of the
// plaintext, used as the GCM AAD. The README beside this file has the full
// account. Besides the two store operations, the script times two
// components, to show where the time goes: crypto.pbkdf2Sync alone with
// kruptein's parameters, and the same RedisStore with no secret (JSON and the
// stub only, no crypto).

'use strict';

const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const session = require('express-session');
const RedisStore = require('connect-redis-crypto')(session);

// The workload, as in sesh's bench/ package: a 16-byte user ID, "user:" and
// 11 digits, in a session that lives for an hour.
const TTL_MS = 3600 * 1000;
const POOL = 64; // distinct sessions (so distinct salts) written and read
const userID = (i) => 'user:' + String(i).padStart(11, '0');
// The secret: 32 random bytes as hex, as a deployment would pass it in
// RedisStore's `secret` option (kruptein stretches whatever it is given).
const SECRET = crypto.randomBytes(32).toString('hex');

function parseArgs(argv) {
  const o = { runs: 3, minTime: 2, warmup: 0.5, child: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--runs') o.runs = Math.floor(next());
    else if (a === '--min-time') o.minTime = next();
    else if (a === '--warmup') o.warmup = next();
    else if (a === '--child') o.child = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function pkgVersion(name) {
  const p = path.join(path.dirname(require.resolve(name)), 'package.json');
  return JSON.parse(fs.readFileSync(p, 'utf8')).version;
}

function cpuModel() {
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
    if (m) return m[1].trim();
  } catch (_) { /* not Linux */ }
  return os.cpus()[0] ? os.cpus()[0].model : 'unknown';
}

// kruptein's parameters, read from the installed source rather than assumed,
// so that a different kruptein version cannot silently change what is timed.
function kruptein() {
  const file = require.resolve('kruptein/lib/kruptein.js');
  const src = fs.readFileSync(file, 'utf8');
  const pb = src.match(/pbkdf2Sync\(secret, salt, (\d+), this\._key_size, this\.hashing\)/);
  const salt = src.match(/this\.crypto\.randomBytes\((\d+)\);\s*\n\s*\/\/ PBKDF2 or scrypt/);
  if (!pb || !salt) throw new Error(`${file}: pbkdf2 call or salt size not found; re-read the source`);
  const k = require('kruptein')({});
  return {
    source: path.relative(__dirname, file),
    algorithm: k.algorithm,
    hashing: k.hashing,
    encodeas: k.encodeas,
    key_bytes: k._key_size,
    iv_bytes: k._iv_size,
    tag_bytes: k._at_size,
    pbkdf2_iterations: Number(pb[1]),
    salt_bytes: Number(salt[1]),
    scrypt: k._use_scrypt,
  };
}

// A Redis client stand-in with the node_redis v3 callback API that RedisStore
// uses: set(args, cb) with args = [key, value, 'EX', ttl], and get(key, cb).
function stubClient() {
  const m = new Map();
  return {
    map: m,
    set(args, cb) { m.set(args[0], args[1]); cb(null, 'OK'); },
    get(key, cb) { cb(null, m.has(key) ? m.get(key) : null); },
  };
}

// What express-session hands to Store#set: a Session with a Cookie, and the
// application's data, here the user ID.
function newSession(i) {
  const sid = crypto.randomBytes(24).toString('base64url');
  const s = new session.Session({ sessionID: sid }, {});
  s.cookie = new session.Cookie({ maxAge: TTL_MS });
  s.userId = userID(i);
  return { sid, sess: s };
}

function now() { return process.hrtime.bigint(); }

// measure runs fn(i) for warmupS seconds, then times N calls, N chosen so the
// timed loop lasts at least minTimeS (re-timed with a larger N if it did not).
function measure(fn, warmupS, minTimeS) {
  let i = 0;
  const w0 = now();
  let wn = 0;
  while (wn < 10 || Number(now() - w0) < warmupS * 1e9) { fn(i++); wn++; }
  let perOp = Number(now() - w0) / wn;
  let n = Math.max(10, Math.ceil((minTimeS * 1e9 * 1.1) / perOp));
  for (;;) {
    const c0 = process.cpuUsage();
    const t0 = now();
    for (let k = 0; k < n; k++) fn(i++);
    const wall = Number(now() - t0);
    const c = process.cpuUsage(c0);
    if (wall >= minTimeS * 1e9) {
      const ns = wall / n;
      return {
        n,
        seconds: +(wall / 1e9).toFixed(3),
        ns_per_op: Math.round(ns),
        ops_per_s: +(1e9 / ns).toFixed(1),
        // process CPU time (all threads) per op; well under ns_per_op means
        // the process was kept off the CPU by other load.
        cpu_ns_per_op: Math.round(((c.user + c.system) * 1e3) / n),
      };
    }
    n = Math.ceil(n * (minTimeS * 1e9 / wall) * 1.1);
  }
}

function child(opts) {
  const kp = kruptein();
  const load0 = os.loadavg();

  const client = stubClient();
  const store = new RedisStore({ client, secret: SECRET, ttl: TTL_MS / 1000 });
  const plainClient = stubClient();
  const plain = new RedisStore({ client: plainClient, ttl: TTL_MS / 1000 });

  const pool = Array.from({ length: POOL }, (_, i) => newSession(i));
  const fail = (what) => (err) => { if (err) throw new Error(`${what}: ${err}`); };
  for (const { sid, sess } of pool) {
    store.set(sid, sess, fail('set'));
    plain.set(sid, sess, fail('plain set'));
  }

  // Round trip once, and record what one session costs in Redis.
  let back;
  store.get(pool[0].sid, (err, s) => { fail('get')(err); back = s; });
  if (!back || back.userId !== userID(0)) throw new Error('round trip lost the user ID');
  const stored = client.map.get(store.prefix + pool[0].sid);
  const storedPlain = plainClient.map.get(plain.prefix + pool[0].sid);

  // Write: RedisStore#set, with its kruptein.set, of a session with a user ID.
  let sink = 0;
  const encrypt = measure((i) => {
    const { sid, sess } = pool[i % POOL];
    store.set(sid, sess, (err) => { if (err) throw new Error(`set: ${err}`); sink++; });
  }, opts.warmup, opts.minTime);

  // Read: RedisStore#get, with its kruptein.get, of one of those sessions.
  const decrypt = measure((i) => {
    const j = i % POOL;
    store.get(pool[j].sid, (err, s) => {
      if (err) throw new Error(`get: ${err}`);
      if (s.userId !== userID(j)) throw new Error('get returned the wrong user ID');
      sink++;
    });
  }, opts.warmup, opts.minTime);

  // Components, shorter loops: where the time goes.
  const compTime = Math.min(1, opts.minTime);
  const salt = crypto.randomBytes(kp.salt_bytes);
  const pbkdf2 = measure(() => {
    sink += crypto.pbkdf2Sync(SECRET, salt, kp.pbkdf2_iterations, kp.key_bytes, kp.hashing)[0];
  }, opts.warmup, compTime);
  const setPlain = measure((i) => {
    const { sid, sess } = pool[i % POOL];
    plain.set(sid, sess, (err) => { if (err) throw err; sink++; });
  }, opts.warmup, compTime);
  const getPlain = measure((i) => {
    plain.get(pool[i % POOL].sid, (err, s) => { if (err) throw err; sink += s.userId.length; });
  }, opts.warmup, compTime);

  return {
    encrypt,
    decrypt,
    components: {
      pbkdf2_only: pbkdf2,
      store_set_no_secret: setPlain,
      store_get_no_secret: getPlain,
    },
    stored_value_bytes: Buffer.byteLength(stored, 'utf8'),
    stored_value_bytes_no_secret: Buffer.byteLength(storedPlain, 'utf8'),
    kruptein: kp,
    loadavg_before: load0.map((x) => +x.toFixed(2)),
    loadavg_after: os.loadavg().map((x) => +x.toFixed(2)),
    sink: sink > 0,
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(runs, key) {
  const get = (r) => key.split('.').reduce((o, k) => o[k], r);
  const ns = median(runs.map((r) => get(r).ns_per_op));
  const cpu = median(runs.map((r) => get(r).cpu_ns_per_op));
  return {
    ns_per_op: Math.round(ns),
    ops_per_s: +(1e9 / ns).toFixed(1),
    // The same from process CPU time: what the op costs a core even when
    // other processes on the machine stretch the wall-clock figure.
    cpu_ns_per_op: Math.round(cpu),
    cpu_ops_per_s: +(1e9 / cpu).toFixed(1),
    ns_per_op_runs: runs.map((r) => get(r).ns_per_op),
    cpu_ns_per_op_runs: runs.map((r) => get(r).cpu_ns_per_op),
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.child) {
    process.stdout.write(JSON.stringify(child(opts)) + '\n');
    return;
  }

  const runs = [];
  for (let r = 0; r < opts.runs; r++) {
    const out = execFileSync(process.execPath, [
      __filename, '--child', '--min-time', String(opts.minTime), '--warmup', String(opts.warmup),
    ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    runs.push(JSON.parse(out));
  }

  const result = {
    benchmark: 'connect-redis-crypto crypto cost per operation, in-process, no Redis',
    write_op: 'RedisStore#set (kruptein.set + JSON) of an express-session Session with a 16-byte userId, stub client',
    read_op: 'RedisStore#get (kruptein.get + JSON.parse) of that stored value, stub client',
    per_core: 'single-threaded synchronous loop: ops_per_s is per core (1e9 / ns_per_op)',
    runs_count: runs.length,
    median_of: `${runs.length} separate node processes`,
    encrypt: summarize(runs, 'encrypt'),
    decrypt: summarize(runs, 'decrypt'),
    components: {
      pbkdf2_only: summarize(runs, 'components.pbkdf2_only'),
      store_set_no_secret: summarize(runs, 'components.store_set_no_secret'),
      store_get_no_secret: summarize(runs, 'components.store_get_no_secret'),
    },
    stored_value_bytes: runs[0].stored_value_bytes,
    stored_value_bytes_no_secret: runs[0].stored_value_bytes_no_secret,
    kruptein: runs[0].kruptein,
    packages: {
      'connect-redis-crypto': pkgVersion('connect-redis-crypto'),
      kruptein: pkgVersion('kruptein'),
      'express-session': pkgVersion('express-session'),
    },
    node: process.version,
    openssl: process.versions.openssl,
    v8: process.versions.v8,
    cpu_model: cpuModel(),
    cpus: os.cpus().length,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    min_time_s: opts.minTime,
    warmup_s: opts.warmup,
    date: new Date().toISOString(),
    runs: runs.map((r) => ({
      encrypt: r.encrypt,
      decrypt: r.decrypt,
      components: r.components,
      loadavg_before: r.loadavg_before,
      loadavg_after: r.loadavg_after,
    })),
  };

  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  const e = result.encrypt;
  const d = result.decrypt;
  const k = result.kruptein;
  process.stderr.write(
    `connect-redis-crypto ${result.packages['connect-redis-crypto']} (kruptein ${result.packages.kruptein}), ` +
    `node ${result.node}, ${result.cpu_model}: ` +
    `encrypt (write) ${e.ns_per_op} ns/op (${(e.ns_per_op / 1e6).toFixed(2)} ms) = ${e.ops_per_s.toFixed(0)} ops/s/core, ` +
    `decrypt (read) ${d.ns_per_op} ns/op (${(d.ns_per_op / 1e6).toFixed(2)} ms) = ${d.ops_per_s.toFixed(0)} ops/s/core ` +
    `[median of ${result.runs_count} processes, wall clock; CPU time ${(e.cpu_ns_per_op / 1e6).toFixed(2)} / ` +
    `${(d.cpu_ns_per_op / 1e6).toFixed(2)} ms; PBKDF2-${k.hashing.toUpperCase()} ${k.pbkdf2_iterations} iterations per op]\n`);
}

main();
