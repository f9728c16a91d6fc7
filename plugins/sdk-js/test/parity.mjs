// The JavaScript side of the SDK parity test: every scenario of
// plugins/sdk/parity/scenarios.json run through this SDK's helper of that name (see
// plugins/sdk/SPEC.md), its output compared with the scenario's.
//
// Run natively (`node plugins/sdk-js/test/parity.mjs`; the parity test in
// tests/tests/sdk_parity.rs does): the contract's imports (`passerelle:connector/…`),
// which only a host gives, are stood in for by functions that are never called — the
// helpers tested are the SDK's own code. Exits non-zero naming each scenario that
// differs.

import { register } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const standIn = `
const host = () => { throw new Error('no host here'); };
export const send = host, sendTemplated = host, upsertSlots = host, upsertAppointments = host,
  deleteAppointments = host, checkpoint = host, onDrift = host, quarantine = host, log = host,
  now = host;`;
const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('passerelle:connector/')) {
    return { url: 'data:text/javascript,' + encodeURIComponent(${JSON.stringify(standIn)}), shortCircuit: true };
  }
  const resolved = await next(specifier, context);
  if (resolved.url.endsWith('/passerelle-sdk.js')) return { ...resolved, format: 'module' };
  return resolved;
}`;
register('data:text/javascript,' + encodeURIComponent(hooks));

const sdk = await import('../passerelle-sdk.js');
const { Timestamp, Window, Reader, Failure } = sdk;

const scenarios = JSON.parse(readFileSync(
  fileURLToPath(new URL('../../sdk/parity/scenarios.json', import.meta.url)), 'utf8')).scenarios;

const rfc = (t) => (t ? t.toRfc3339() : null);

function error(f, want) {
  if (!(f instanceof Failure)) throw f;
  const { tag, val } = f.error;
  if (tag !== 'schema-drift') return { tag, val: val ?? null };
  const drift = { path: val.path, expected: val.expected, found: val.found };
  if (!(want && want.drift && 'expected' in want.drift)) delete drift.expected;
  return { drift };
}

function attempt(f, want) {
  try {
    return f();
  } catch (e) {
    return error(e, want);
  }
}

const STEPS = {
  query: 'query', endpoint: 'endpoint', bearer: 'bearer', secret_header: 'secretHeader',
  secret_prefix: 'secretPrefix', secret_template: 'secretTemplate',
};

function run(helper, i, want) {
  switch (helper) {
    case 'timestamp.parse': return rfc(Timestamp.parse(i.text));
    case 'timestamp.local': return rfc(Timestamp.local(i.date, i.time, i.zone));
    case 'timestamp.midnight': return rfc(Timestamp.midnight(i.date, i.zone));
    case 'timestamp.date_in': return Timestamp.parse(i.at).dateIn(i.zone);
    case 'timestamp.at_offset_minutes': return rfc(Timestamp.parse(i.at).atOffsetMinutes(i.minutes));
    case 'timestamp.to_utc_millis': return Timestamp.parse(i.at).toUtcMillis();
    case 'timestamp.timestamp_millis': return Timestamp.parse(i.at).timestampMillis();
    case 'window.from_now': {
      const w = new Window(Timestamp.parse(i.start), Timestamp.parse(i.end));
      const f = i.now ? w.fromNow(Timestamp.parse(i.now)) : w;
      return { start: rfc(f.start), end: rfc(f.end) };
    }
    case 'window.days':
      return new Window(Timestamp.parse(i.start), Timestamp.parse(i.end)).days(i.days, i.zone);
    case 'http.retry_policy':
      return { retry_within_run_secs: sdk.RETRY_WITHIN_RUN_SECS, rate_limit_retries: sdk.RATE_LIMIT_RETRIES };
    case 'http.status_error': {
      const headers = i.retry_after ? [['retry-after', i.retry_after]] : [];
      const f = sdk.statusError(i.endpoint, { status: i.status, headers, body: new Uint8Array() });
      return f ? error(f) : null;
    }
    case 'http.request': {
      let r = { get: sdk.get, post: sdk.post }[i.method](i.url);
      for (const [step, ...args] of i.steps) r = r[STEPS[step]](...args);
      const headers = r.headers.map(({ name, value }) => (value.tag === 'text' ? [name, 'text', value.val]
        : value.tag === 'secret' ? [name, 'secret', value.val]
          : [name, 'prefix', value.val.prefix, value.val.name]));
      return {
        url: r.fullUrl(), endpoint: r.endpointName(), headers,
        templated: r.templated.map((t) => [t.header, t.before, t.secret, t.after]),
      };
    }
    case 'account.setting':
    case 'account.setting_opt':
    case 'account.has_secret': {
      const account = { settings: i.settings.map(([key, value]) => ({ key, value })), secrets: i.secrets };
      const f = { 'account.setting': sdk.setting, 'account.setting_opt': sdk.settingOpt, 'account.has_secret': sdk.hasSecret }[helper];
      return attempt(() => f(account, i.key) ?? null);
    }
    case 'drift.kind': return sdk.kind('value' in i ? i.value : new Reader('', {}).get('x').value);
    case 'drift.nullable': return attempt(() => {
      const v = new Reader('GET /x', i.json).get(i.field).nullable();
      return { value: v ? v.str() : null };
    }, want);
    case 'drift.union': return attempt(() => ({
      shapes: new Reader('GET /x', i.json).union(i.shapes).map(([name]) => name),
    }), want);
    case 'drift.path': return attempt(() => {
      let at = new Reader('GET /x', i.json);
      for (const key of i.keys) at = typeof key === 'number' ? at.items()[key] : at.get(key);
      ({ string: () => at.str() })[i.expect]();
      return 'read';
    }, want);
    default:
      console.error(`the JavaScript SDK has no helper for scenario \`${helper}\``);
      process.exit(2);
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const failed = [];
for (const s of scenarios) {
  const got = run(s.helper, s.in, s.out);
  if (!same(got, s.out)) {
    failed.push(`${s.helper} ${JSON.stringify(s.in)}: got ${JSON.stringify(got)}, want ${JSON.stringify(s.out)}`);
  }
}
if (failed.length) {
  console.log(`javascript: ${failed.length} of ${scenarios.length} scenarios differ:\n${failed.join('\n')}`);
  process.exit(1);
}
console.log(`javascript: ${scenarios.length} scenarios as the other SDKs`);
