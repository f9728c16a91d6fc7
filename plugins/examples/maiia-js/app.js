/**
 * `maiia` in JavaScript: the passerelle connector for Maiia, the same work as the Rust
 * connector (plugins/maiia), on the same cassettes.
 *
 * Availability only: the centre's consultation reasons (those the public may book,
 * `patientLimitation` `PUBLIC`), then each reason's free times in the window, page by
 * page (`…&limit=100&page=N&size=100` answers `{"items": […], "total": T}`).
 */
import { Failure, Window, connector, emit, get, log, setting } from '../../sdk-js/passerelle-sdk.js';

const SITE = 'https://www.maiia.com';
const REASONS = 'GET /api/pat-public/consultation-reason-hcd';
const AVAILABILITIES = 'GET /api/pat-public/availabilities';
const SIZE = 100;
const MAX_PAGES = 200;

/** Asks every page of `request(page)`, hands each page's items to `each`; the number of requests. */
function pages(request, each) {
  let seen = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = request(page).query('limit', SIZE).query('page', page).query('size', SIZE).json();
    const items = answer.get('items').items();
    const total = answer.get('total').int();
    each(items);
    seen += items.length;
    if (!items.length || seen >= total) return page + 1;
  }
  return MAX_PAGES;
}

const maiia = {
  describe() {
    return {
      name: 'maiia',
      version: '0.1.0',
      platform: 'Maiia',
      allowedHosts: [SITE],
      rateLimit: { requestsPerSecond: 3, burst: 6 },
      settings: [{
        name: 'center',
        description: "centre id: 24 hexadecimal digits (the `centerId` of Maiia's API, e.g. 5ffc744c68dedf073a5b87a2)",
        required: true,
      }],
      secrets: [],
    };
  },

  check(account) {
    if (!/^[0-9a-fA-F]{24}$/.test(setting(account, 'center'))) {
      throw Failure.invalidConfig("setting `center` must be Maiia's centre id: 24 hexadecimal digits");
    }
  },

  sync(request) {
    maiia.check(request.account);
    // Availability only: asked from the run's clock, never for days already past.
    const window = Window.parse(request.window).fromNow();
    const center = setting(request.account, 'center');
    const reasons = [];
    pages((_) => get(`${SITE}/api/pat-public/consultation-reason-hcd`).endpoint(REASONS).query('rootCenterId', center),
      (items) => {
        for (const r of items) {
          reasons.push({
            id: r.get('id').str(),
            name: r.get('name').str(),
            bookable: r.get('patientLimitation').str() === 'PUBLIC',
            physical: r.get('consultationType').str() === 'PHYSICAL',
          });
        }
      });
    const bookable = reasons.filter((r) => r.bookable);
    const from = window.start.toUtcMillis();
    const to = window.end.toUtcMillis();
    let slots = 0;
    let requests = 0;
    for (const reason of bookable) {
      requests += pages(
        (_) => get(`${SITE}/api/pat-public/availabilities`).endpoint(AVAILABILITIES)
          .query('centerId', center).query('consultationReasonName', reason.name)
          .query('from', from).query('to', to),
        (items) => {
          const found = [];
          for (const a of items) {
            const id = a.get('id').str();
            const practitioner = a.get('practitionerId').str();
            const reasonId = a.get('consultationReasonId').str();
            const starts = a.get('startDateTime').timestamp();
            const ends = a.get('endDateTime').timestamp();
            // The query is by name, which two reasons may share.
            if (reasonId === reason.id && window.contains(starts)) {
              found.push(emit.slot(id, starts.toRfc3339(), {
                endsAt: ends.toRfc3339(), practitioner, visitMotive: reason.name,
              }));
            }
          }
          slots += found.length;
          emit.slots(found);
        },
      );
    }
    log.info('maiia: done', { slots, reasons: bookable.length });
    return {
      cursor: undefined,
      message: `${slots} bookable times for ${bookable.length} of ${reasons.length} consultation reasons in ${requests} availability requests`,
    };
  },
};

export const { describe, check, sync } = connector(maiia);
