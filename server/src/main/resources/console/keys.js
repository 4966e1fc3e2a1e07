// The key list and its dialogs: create, edit, reset quota, clear expiration, delete.
import { ApiError, call } from './api.js';
import { data, h, modal } from './dom.js';
import { dateTime, money, number, relative, t } from './i18n.js';

const PAGE_SIZE = 50;
const STATUSES = ['ACTIVE', 'DISABLED', 'EXPIRED', 'QUOTA_EXHAUSTED'];
const DAY_MS = 86400000;

/**
 * The spending windows (README "Spending windows"): label, ApiKey's JSON names of the limit and of
 * the spend GetKey returns, the update mask path, and the field's dialog label and detail label.
 */
export const WINDOWS = [
  ['5h', 'window5hUsd', 'window5hSpentUsd', 'window_5h_usd', 'dialog.window_fiveHours', 'usage.window_fiveHours'],
  ['1d', 'window1dUsd', 'window1dSpentUsd', 'window_1d_usd', 'dialog.window_oneDay', 'usage.window_oneDay'],
  ['7d', 'window7dUsd', 'window7dSpentUsd', 'window_7d_usd', 'dialog.window_sevenDays', 'usage.window_sevenDays'],
  ['30d', 'window30dUsd', 'window30dSpentUsd', 'window_30d_usd', 'dialog.window_thirtyDays', 'usage.window_thirtyDays'],
];

/** Calls the API; a refused token signs out (the root shows why). */
export async function rpc(el, method, request) {
  try {
    return await call(method, request);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      el.dispatchEvent(new CustomEvent('qa-signed-out', { bubbles: true, detail: 'signIn.expired' }));
    }
    throw e;
  }
}

/** What an API error says, in the page's language; the API's own text follows as data. */
export function errorText(e) {
  if (!(e instanceof ApiError) || e.status === 0) {
    return [t('error.network')];
  }
  const known = t('error.' + e.code);
  return [known.startsWith('error.') ? t('error.unknown') : known, e.message ? ' ' : '',
    e.message ? data(e.message, 'span', { lang: 'en' }) : ''];
}

export function statusOf(key) {
  return String(key.status || '').replace(/^KEY_STATUS_/, '');
}

export function isUnlimited(amount) {
  return !amount || /^0(\.0*)?$/.test(amount);
}

function badge(key) {
  const status = statusOf(key);
  return h('span', { class: 'badge badge-' + status.toLowerCase(), 'data-status': status },
    t('status.' + status));
}

function usedBar(key) {
  const used = key.quotaUsedUsd || '0';
  if (isUnlimited(key.quotaUsd)) {
    return h('span', { class: 'used' }, money(used));
  }
  const share = Math.min(1, Number(used) / Number(key.quotaUsd));
  const bar = h('span', {
    class: 'bar',
    role: 'meter',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.round(share * 100),
    'aria-label': t('keys.used'),
  }, h('span', { class: 'bar-fill' }));
  bar.firstChild.style.width = (share * 100).toFixed(1) + '%';
  return h('span', { class: 'used' }, bar, h('span', { class: 'used-amount' }, money(used)));
}

function expiry(key) {
  if (!key.expiresAt) {
    return h('span', { class: 'muted' }, t('keys.never'));
  }
  return h('span', { class: 'expires' },
    h('time', { datetime: key.expiresAt }, dateTime(key.expiresAt)),
    h('span', { class: 'relative' },
      new Date(key.expiresAt).getTime() <= Date.now()
        ? t('keys.expiredAgo', { when: relative(key.expiresAt) })
        : relative(key.expiresAt)));
}

class QaKeyList extends HTMLElement {
  connectedCallback() {
    this.keys = [];
    this.next = '';
    this.filterName = '';
    this.filterStatus = '';
    this.message = h('p', { class: 'error', role: 'alert', id: 'list-error' });
    this.body = h('tbody');
    this.count = h('p', { class: 'hint', id: 'list-count', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', id: 'load-more', onclick: () => this.load() },
      t('keys.loadMore'));
    const name = h('input', {
      id: 'filter-name', type: 'search', autocomplete: 'off',
      oninput: (e) => { this.filterName = e.target.value; this.draw(); },
    });
    const status = h('select', {
      id: 'filter-status',
      onchange: (e) => { this.filterStatus = e.target.value; this.draw(); },
    }, h('option', { value: '' }, t('keys.allStatuses')),
    STATUSES.map((s) => h('option', { value: s }, t('status.' + s))));
    const heads = ['name', 'prefix', 'status', 'quota', 'used', 'expires', 'created', 'actions'];
    this.replaceChildren(
      h('div', { class: 'toolbar' },
        h('h1', {}, t('keys.heading')),
        h('button', { type: 'button', class: 'primary', id: 'create-key', onclick: () => this.create() },
          t('keys.create'))),
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'filter-name' }, t('keys.filterName')), name),
        h('div', { class: 'field' }, h('label', { for: 'filter-status' }, t('keys.filterStatus')),
          status)),
      this.message,
      h('table', { class: 'keys', id: 'keys' },
        h('caption', { class: 'visually-hidden' }, t('keys.heading')),
        h('thead', {}, h('tr', {}, heads.map((c) => h('th', { scope: 'col' }, t('keys.' + c))))),
        this.body),
      this.count,
      this.more,
    );
    this.load();
  }

  async load(reset = false) {
    if (reset) {
      this.keys = [];
      this.next = '';
    }
    this.message.textContent = '';
    try {
      const page = await rpc(this, 'ListKeys', { pageSize: PAGE_SIZE, pageToken: this.next });
      this.keys = this.keys.concat(page.keys || []);
      this.next = page.nextPageToken || '';
    } catch (e) {
      this.message.replaceChildren(...errorText(e));
    }
    this.draw();
  }

  draw() {
    const needle = this.filterName.trim().toLowerCase();
    const shown = this.keys.filter((k) =>
      (!this.filterStatus || statusOf(k) === this.filterStatus)
      && (!needle || (k.name || '').toLowerCase().includes(needle)));
    this.body.replaceChildren(...shown.map((k) => this.row(k)));
    if (shown.length === 0) {
      this.body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' },
        this.keys.length === 0 ? t('keys.none') : t('keys.noMatch'))));
    }
    this.count.textContent = t(this.next ? 'keys.countMore' : 'keys.count',
      { shown: number(shown.length), loaded: number(this.keys.length) });
    this.more.hidden = !this.next;
  }

  row(k) {
    const cell = (label, ...content) => h('td', { 'data-label': t('keys.' + label) }, ...content);
    const status = statusOf(k);
    const act = (action, label, fn) =>
      h('button', { type: 'button', class: 'link', 'data-action': action, onclick: fn }, t(label));
    return h('tr', { 'data-key-id': k.id },
      cell('name', data(k.name, 'span', { class: 'key-name' })),
      cell('prefix', data(k.keyPrefix, 'code')),
      cell('status', badge(k)),
      cell('quota', isUnlimited(k.quotaUsd) ? t('keys.unlimited') : money(k.quotaUsd)),
      cell('used', usedBar(k)),
      cell('expires', expiry(k)),
      cell('created', k.createdAt ? h('time', { datetime: k.createdAt }, dateTime(k.createdAt)) : ''),
      cell('actions', h('div', { class: 'actions' },
        act('edit', 'keys.edit', () => this.edit(k)),
        h('a', { href: '#/keys/' + encodeURIComponent(k.id) + '/usage', class: 'link',
          'data-action': 'usage' }, t('keys.usage')),
        act('reset', 'keys.resetQuota', () => this.resetQuota(k)),
        k.expiresAt ? act('clear-expiration', 'keys.clearExpiration', () => this.clearExpiration(k)) : null,
        status === 'DISABLED'
          ? act('enable', 'keys.enable', () => this.setEnabled(k, true))
          : act('disable', 'keys.disable', () => this.setEnabled(k, false)),
        act('delete', 'keys.delete', () => this.remove(k)))));
  }

  async create() {
    const created = await keyDialog(this, null);
    if (created) {
      await showSecret(created);
      this.load(true);
    }
  }

  async edit(k) {
    if (await keyDialog(this, k)) {
      this.load(true);
    }
  }

  async setEnabled(k, enabled) {
    try {
      await rpc(this, 'UpdateKey', {
        key: { id: k.id, status: enabled ? 'KEY_STATUS_ACTIVE' : 'KEY_STATUS_DISABLED' },
        updateMask: 'status',
      });
    } catch (e) {
      this.message.replaceChildren(...errorText(e));
      return;
    }
    this.load(true);
  }

  async resetQuota(k) {
    let fresh = k;
    try {
      fresh = (await rpc(this, 'GetKey', { id: k.id })).key;
    } catch (e) {
      this.message.replaceChildren(...errorText(e));
      return;
    }
    const ok = await confirmDialog(this, 'reset', t('reset.heading'),
      [t('reset.body', { amount: money(fresh.quotaUsedUsd) }), ' ', data(fresh.name, 'strong')],
      t('reset.confirm'), () => rpc(this, 'ResetQuota', { id: k.id }));
    if (ok) {
      this.load(true);
    }
  }

  async clearExpiration(k) {
    const ok = await confirmDialog(this, 'clear-expiration', t('clearExpiration.heading'),
      [t('clearExpiration.body'), ' ', data(k.name, 'strong')], t('clearExpiration.confirm'),
      () => rpc(this, 'ClearExpiration', { id: k.id }));
    if (ok) {
      this.load(true);
    }
  }

  async remove(k) {
    const ok = await confirmDialog(this, 'delete', t('delete.heading'),
      [t('delete.body'), ' ', data(k.name, 'strong')], t('delete.confirm'),
      () => rpc(this, 'DeleteKey', { id: k.id }), true);
    if (ok) {
      this.load(true);
    }
  }
}

/** A yes/no dialog; the action runs on Confirm and its error is shown in the dialog. */
function confirmDialog(el, name, heading, body, confirmLabel, action, danger = false) {
  return modal((close) => {
    const error = h('p', { class: 'error', role: 'alert' });
    const confirm = h('button', {
      type: 'button', class: danger ? 'danger' : 'primary', 'data-confirm': name,
      onclick: async () => {
        confirm.disabled = true;
        try {
          await action();
          close(true);
        } catch (e) {
          error.replaceChildren(...errorText(e));
          confirm.disabled = false;
        }
      },
    }, confirmLabel);
    return h('div', { class: 'dialog-body', 'data-dialog': name },
      h('h2', { id: 'dialog-title' }, heading),
      h('p', { class: 'confirm-text' }, body),
      error,
      h('div', { class: 'buttons' },
        h('button', { type: 'button', 'data-cancel': name, autofocus: true, onclick: () => close(null) },
          t('common.cancel')),
        confirm));
  }, 'dialog-title');
}

function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T'
    + pad(date.getHours()) + ':' + pad(date.getMinutes());
}

/**
 * Create (key null) or edit a key. Edit sends only the fields that changed, named in the field
 * mask. Resolves to the CreateKey response, true after an edit, or null when cancelled.
 */
function keyDialog(el, key) {
  const editing = key !== null;
  return modal((close) => {
    const fields = {};
    const errors = {};
    const field = (name, label, input, hint = null) => {
      input.id = 'key-' + name;
      errors[name] = h('p', { class: 'field-error', id: 'key-' + name + '-error', role: 'alert' });
      input.setAttribute('aria-describedby', 'key-' + name + '-error' + (hint ? ' key-' + name + '-hint' : ''));
      fields[name] = input;
      return h('div', { class: 'field' },
        h('label', { for: 'key-' + name }, t(label)), input,
        hint ? h('p', { class: 'hint', id: 'key-' + name + '-hint' }, t(hint)) : null,
        errors[name]);
    };
    const name = h('input', { type: 'text', autocomplete: 'off', required: true, autofocus: true,
      value: editing ? key.name : '' });
    const quota = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off',
      value: editing && !isUnlimited(key.quotaUsd) ? key.quotaUsd : '' });
    const choice = h('select', {},
      editing ? h('option', { value: 'keep' }, t('dialog.expiryKeep')) : null,
      editing ? null : h('option', { value: 'never' }, t('dialog.expiryNever')),
      [7, 30, 90].map((d) => h('option', { value: String(d) }, t('dialog.expiryPlus', { days: number(d) }))),
      h('option', { value: 'custom' }, t('dialog.expiryCustom')));
    const at = h('input', { type: 'datetime-local', id: 'key-expires-at-custom',
      'aria-label': t('dialog.expiryAt') });
    const atWrap = h('div', { class: 'field', hidden: true },
      h('label', { for: 'key-expires-at-custom' }, t('dialog.expiryAt')), at);
    if (editing && key.expiresAt) {
      at.value = toLocalInput(new Date(key.expiresAt));
    }
    choice.addEventListener('change', () => { atWrap.hidden = choice.value !== 'custom'; });
    const concurrency = h('input', { type: 'number', min: 0, max: 1000000, step: 1, inputmode: 'numeric',
      value: editing ? String(key.maxConcurrentRequests || 0) : '0' });
    // Key policies and the reporter hold (README "Key policies", "Holds for usage-stream
    // reporters"): lists as comma-separated entries, the period as the API names it.
    const listValue = (list) => (list || []).join(', ');
    const listOf = (input) => input.value.split(',').map((v) => v.trim()).filter((v) => v !== '');
    const ipAllow = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false',
      value: editing ? listValue(key.ipAllow) : '' });
    const ipDeny = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false',
      value: editing ? listValue(key.ipDeny) : '' });
    const models = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false',
      value: editing ? listValue(key.modelAllow) : '' });
    const period = h('select', {},
      [['none', 'dialog.period_none'], ['daily', 'dialog.period_daily'],
        ['weekly', 'dialog.period_weekly'], ['monthly', 'dialog.period_monthly']].map(([p, label]) =>
        h('option', { value: p }, t(label))));
    const currentPeriod = editing && key.budgetPeriod ? key.budgetPeriod : 'none';
    period.value = currentPeriod;
    const periodReset = h('input', { type: 'time', value: editing && key.budgetResetTime ? key.budgetResetTime : '00:00' });
    const periodZone = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false',
      value: editing && key.budgetTimeZone ? key.budgetTimeZone : 'UTC' });
    // Spending windows (blank or 0: none) and rate limits (0: none).
    const windows = WINDOWS.map(([label, json, , path, text]) => {
      const stored = editing && key[json] ? key[json] : '0';
      const input = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off',
        value: isUnlimited(stored) ? '' : stored });
      return { label, json, path, text, stored, input };
    });
    const currentRpm = editing ? Number(key.requestsPerMinute || 0) : 0;
    const currentTpm = editing ? String(key.tokensPerMinute || '0') : '0';
    const rpm = h('input', { type: 'number', min: 0, max: 100000000, step: 1, inputmode: 'numeric',
      value: String(currentRpm) });
    const tpm = h('input', { type: 'number', min: 0, step: 1, inputmode: 'numeric', value: currentTpm });
    const currentHold = editing && key.holdUsdPerRequest ? key.holdUsdPerRequest : '0';
    const hold = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off',
      value: isUnlimited(currentHold) ? '' : currentHold });
    const holdExpiry = h('select', {},
      h('option', { value: 'HOLD_EXPIRY_CHARGE' }, t('dialog.holdCharge')),
      h('option', { value: 'HOLD_EXPIRY_RELEASE' }, t('dialog.holdRelease')));
    const currentExpiry = editing && key.holdExpiry === 'HOLD_EXPIRY_RELEASE' ? 'HOLD_EXPIRY_RELEASE' : 'HOLD_EXPIRY_CHARGE';
    holdExpiry.value = currentExpiry;
    const enabled = h('select', {},
      h('option', { value: 'KEY_STATUS_ACTIVE' }, t('dialog.enabled')),
      h('option', { value: 'KEY_STATUS_DISABLED' }, t('dialog.disabled')));
    if (editing && statusOf(key) === 'DISABLED') {
      enabled.value = 'KEY_STATUS_DISABLED';
    }
    const general = h('p', { class: 'error', role: 'alert', id: 'key-error' });
    const submit = h('button', { type: 'submit', class: 'primary', id: 'key-submit' },
      t(editing ? 'dialog.save' : 'dialog.create'));

    const expiresAt = () => {
      if (choice.value === 'custom') {
        return at.value ? new Date(at.value).toISOString() : '';
      }
      if (/^\d+$/.test(choice.value)) {
        return new Date(Date.now() + Number(choice.value) * DAY_MS).toISOString();
      }
      return null; // never / keep
    };
    const show = (e) => {
      const target = e instanceof ApiError ? e.field() : null;
      const place = {
        name: 'name', quota_usd: 'quota', expires_at: 'expires', max_concurrent_requests: 'concurrency',
        status: 'status', ip_allow: 'ipAllow', ip_deny: 'ipDeny', model_allow: 'models',
        budget_period: 'period', budget_reset_time: 'periodReset', budget_time_zone: 'periodZone',
        hold_usd_per_request: 'hold', hold_expiry: 'holdExpiry',
        window_5h_usd: 'window5h', window_1d_usd: 'window1d', window_7d_usd: 'window7d',
        window_30d_usd: 'window30d', requests_per_minute: 'rpm', tokens_per_minute: 'tpm',
      }[target];
      const where = place && errors[place] ? errors[place] : general;
      where.replaceChildren(...errorText(e));
      if (place && fields[place]) {
        fields[place].setAttribute('aria-invalid', 'true');
        fields[place].focus();
      }
    };
    const form = h('form', {
      class: 'dialog-body', 'data-dialog': editing ? 'edit' : 'create', novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        Object.values(errors).forEach((p) => p.replaceChildren());
        Object.values(fields).forEach((f) => f.removeAttribute('aria-invalid'));
        general.replaceChildren();
        if (choice.value === 'custom' && !at.value) {
          errors.expires.textContent = t('dialog.expiryMissing');
          return;
        }
        submit.disabled = true;
        try {
          if (!editing) {
            const request = {
              name: name.value,
              quotaUsd: quota.value.trim() === '' ? '0' : quota.value.trim(),
              maxConcurrentRequests: Number(concurrency.value || 0),
            };
            const when = expiresAt();
            if (when) {
              request.expiresAt = when;
            }
            // Only what was set: an unset policy is no restriction.
            if (listOf(ipAllow).length > 0) {
              request.ipAllow = listOf(ipAllow);
            }
            if (listOf(ipDeny).length > 0) {
              request.ipDeny = listOf(ipDeny);
            }
            if (listOf(models).length > 0) {
              request.modelAllow = listOf(models);
            }
            if (period.value !== 'none') {
              request.budgetPeriod = period.value;
              request.budgetResetTime = periodReset.value || '00:00';
              request.budgetTimeZone = periodZone.value.trim() || 'UTC';
            }
            for (const w of windows) {
              if (!isUnlimited(w.input.value.trim())) {
                request[w.json] = w.input.value.trim();
              }
            }
            if (Number(rpm.value || 0) !== 0) {
              request.requestsPerMinute = Number(rpm.value);
            }
            if ((tpm.value.trim() || '0') !== '0') {
              request.tokensPerMinute = tpm.value.trim();
            }
            if (hold.value.trim() !== '') {
              request.holdUsdPerRequest = hold.value.trim();
            }
            if (holdExpiry.value !== 'HOLD_EXPIRY_CHARGE') {
              request.holdExpiry = holdExpiry.value;
            }
            close(await rpc(el, 'CreateKey', request));
            return;
          }
          const change = { id: key.id };
          const mask = [];
          if (name.value !== key.name) {
            change.name = name.value;
            mask.push('name');
          }
          const newQuota = quota.value.trim() === '' ? '0' : quota.value.trim();
          if (!(isUnlimited(newQuota) && isUnlimited(key.quotaUsd)) && newQuota !== key.quotaUsd) {
            change.quotaUsd = newQuota;
            mask.push('quota_usd');
          }
          const when = expiresAt();
          if (when) {
            change.expiresAt = when;
            mask.push('expires_at');
          }
          if (Number(concurrency.value || 0) !== (key.maxConcurrentRequests || 0)) {
            change.maxConcurrentRequests = Number(concurrency.value || 0);
            mask.push('max_concurrent_requests');
          }
          // A list sent under the mask replaces the stored one; an empty one removes it.
          for (const [input, stored, json, path] of [
            [ipAllow, key.ipAllow, 'ipAllow', 'ip_allow'],
            [ipDeny, key.ipDeny, 'ipDeny', 'ip_deny'],
            [models, key.modelAllow, 'modelAllow', 'model_allow'],
          ]) {
            if (listOf(input).join(',') !== (stored || []).join(',')) {
              change[json] = listOf(input);
              mask.push(path);
            }
          }
          if (period.value !== currentPeriod) {
            change.budgetPeriod = period.value;
            mask.push('budget_period');
          }
          if (period.value !== 'none') {
            if ((periodReset.value || '00:00') !== (key.budgetResetTime || '00:00')) {
              change.budgetResetTime = periodReset.value || '00:00';
              mask.push('budget_reset_time');
            }
            if ((periodZone.value.trim() || 'UTC') !== (key.budgetTimeZone || 'UTC')) {
              change.budgetTimeZone = periodZone.value.trim() || 'UTC';
              mask.push('budget_time_zone');
            }
          }
          for (const w of windows) {
            const value = w.input.value.trim() === '' ? '0' : w.input.value.trim();
            if (!(isUnlimited(value) && isUnlimited(w.stored)) && value !== w.stored) {
              change[w.json] = value;
              mask.push(w.path);
            }
          }
          if (Number(rpm.value || 0) !== currentRpm) {
            change.requestsPerMinute = Number(rpm.value || 0);
            mask.push('requests_per_minute');
          }
          if ((tpm.value.trim() || '0') !== currentTpm) {
            change.tokensPerMinute = tpm.value.trim() || '0';
            mask.push('tokens_per_minute');
          }
          const newHold = hold.value.trim() === '' ? '0' : hold.value.trim();
          if (!(isUnlimited(newHold) && isUnlimited(currentHold)) && newHold !== currentHold) {
            change.holdUsdPerRequest = newHold;
            mask.push('hold_usd_per_request');
          }
          if (holdExpiry.value !== currentExpiry) {
            change.holdExpiry = holdExpiry.value;
            mask.push('hold_expiry');
          }
          if (enabled.value !== (statusOf(key) === 'DISABLED' ? 'KEY_STATUS_DISABLED' : 'KEY_STATUS_ACTIVE')) {
            change.status = enabled.value;
            mask.push('status');
          }
          if (mask.length > 0) {
            await rpc(el, 'UpdateKey', { key: change, updateMask: mask.join(',') });
          }
          close(true);
        } catch (e) {
          show(e);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h2', { id: 'dialog-title' }, t(editing ? 'dialog.editHeading' : 'dialog.createHeading')),
    editing ? h('p', { class: 'hint' }, data(key.keyPrefix, 'code')) : null,
    field('name', 'dialog.name', name),
    field('quota', 'dialog.quota', quota, 'dialog.quotaHint'),
    field('expires', 'dialog.expiry', choice),
    atWrap,
    field('concurrency', 'dialog.concurrency', concurrency, 'dialog.concurrencyHint'),
    h('fieldset', { class: 'policies' },
      h('legend', {}, t('dialog.policies')),
      field('ipAllow', 'dialog.ipAllow', ipAllow, 'dialog.ipHint'),
      field('ipDeny', 'dialog.ipDeny', ipDeny, 'dialog.ipHint'),
      field('models', 'dialog.models', models, 'dialog.modelsHint'),
      field('period', 'dialog.period', period, 'dialog.periodHint'),
      field('periodReset', 'dialog.periodReset', periodReset),
      field('periodZone', 'dialog.periodZone', periodZone, 'dialog.periodZoneHint'),
      windows.map((w) => field('window' + w.label, w.text, w.input, 'dialog.windowHint')),
      field('rpm', 'dialog.rpm', rpm, 'dialog.rateHint'),
      field('tpm', 'dialog.tpm', tpm, 'dialog.rateHint'),
      field('hold', 'dialog.hold', hold, 'dialog.holdHint'),
      field('holdExpiry', 'dialog.holdExpiry', holdExpiry)),
    editing ? field('status', 'dialog.status', enabled) : null,
    general,
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'key-cancel', onclick: () => close(null) }, t('common.cancel')),
      submit));
    return form;
  }, 'dialog-title');
}

/** The new key's secret, once, with a copy button; it is kept nowhere. */
function showSecret(created) {
  return modal((close) => {
    const secret = h('input', { type: 'text', readonly: true, id: 'secret', class: 'secret data',
      value: created.secret, 'aria-label': t('secret.label') });
    const copied = h('p', { class: 'hint', role: 'status', id: 'copied' });
    return h('div', { class: 'dialog-body', 'data-dialog': 'secret' },
      h('h2', { id: 'dialog-title' }, t('secret.heading')),
      h('p', {}, data(created.key.name, 'strong')),
      h('p', { class: 'warning', id: 'secret-warning' }, t('secret.warning')),
      h('label', { for: 'secret' }, t('secret.label')),
      secret,
      copied,
      h('div', { class: 'buttons' },
        h('button', {
          type: 'button', id: 'copy-secret',
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(created.secret);
            } catch (e) {
              secret.select();
              document.execCommand('copy');
            }
            copied.textContent = t('secret.copied');
          },
        }, t('secret.copy')),
        h('button', { type: 'button', class: 'primary', id: 'secret-done', autofocus: true,
          onclick: () => close(true) }, t('secret.done'))));
  }, 'dialog-title');
}

customElements.define('qa-key-list', QaKeyList);
