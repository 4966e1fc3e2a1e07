// One key's usage: its ledger through ListUsage (newest first, paged) and spend per day.
import { data, h, sumDecimals, svg } from './dom.js';
import { dateTime, day, money, number, t } from './i18n.js';
import { WINDOWS, errorText, isUnlimited, rpc } from './keys.js';

const PAGE_SIZE = 100;

class QaUsage extends HTMLElement {
  connectedCallback() {
    this.events = [];
    this.next = '';
    this.heading = h('h1', {}, t('usage.heading'));
    this.message = h('p', { class: 'error', role: 'alert', id: 'usage-error' });
    this.limits = h('section', { class: 'limits', id: 'key-limits', 'aria-labelledby': 'limits-heading' });
    this.chart = h('figure', { class: 'chart', id: 'usage-chart' });
    this.body = h('tbody');
    this.more = h('button', { type: 'button', id: 'usage-more', onclick: () => this.load() },
      t('usage.loadMore'));
    const heads = ['time', 'model', 'inputTokens', 'outputTokens', 'cost'];
    this.replaceChildren(
      h('p', {}, h('a', { href: '#/keys', class: 'link', id: 'back' }, t('usage.back'))),
      this.heading,
      this.message,
      this.limits,
      this.chart,
      h('table', { class: 'usage', id: 'usage' },
        h('caption', { class: 'visually-hidden' }, t('usage.ledger')),
        h('thead', {}, h('tr', {}, heads.map((c) => h('th', { scope: 'col' }, t('usage.' + c))))),
        this.body),
      this.more);
    this.loadKey();
    this.load();
  }

  async loadKey() {
    try {
      const { key } = await rpc(this, 'GetKey', { id: this.keyId });
      this.heading.replaceChildren(t('usage.headingFor'), ' ', data(key.name));
      this.drawLimits(key);
    } catch (e) {
      this.message.replaceChildren(...errorText(e));
    }
  }

  /** The key's spending windows (limit and what GetKey says is spent in each now) and rate limits. */
  drawLimits(key) {
    const rows = [];
    for (const [label, json, spentJson, , , text] of WINDOWS) {
      if (!isUnlimited(key[json])) {
        rows.push(h('div', { class: 'limit', 'data-window': label },
          h('dt', {}, t(text)),
          h('dd', {}, t('usage.windowSpent', { spent: money(key[spentJson] || '0'), limit: money(key[json]) }))));
      }
    }
    if (Number(key.requestsPerMinute || 0) > 0) {
      rows.push(h('div', { class: 'limit', 'data-limit': 'rpm' },
        h('dt', {}, t('usage.rpm')), h('dd', {}, number(key.requestsPerMinute))));
    }
    if (String(key.tokensPerMinute || '0') !== '0') {
      rows.push(h('div', { class: 'limit', 'data-limit': 'tpm' },
        h('dt', {}, t('usage.tpm')), h('dd', {}, number(key.tokensPerMinute))));
    }
    this.limits.replaceChildren(h('h2', { id: 'limits-heading' }, t('usage.limits')),
      rows.length > 0 ? h('dl', {}, rows) : h('p', { class: 'hint' }, t('usage.noLimits')));
  }

  async load() {
    try {
      const page = await rpc(this, 'ListUsage',
        { keyId: this.keyId, pageSize: PAGE_SIZE, pageToken: this.next });
      this.events = this.events.concat(page.events || []);
      this.next = page.nextPageToken || '';
    } catch (e) {
      this.message.replaceChildren(...errorText(e));
    }
    this.draw();
  }

  draw() {
    this.body.replaceChildren(...this.events.map((e) => h('tr', { 'data-report-id': e.reportId },
      h('td', { 'data-label': t('usage.time') },
        h('time', { datetime: e.occurredAt }, e.occurredAt ? dateTime(e.occurredAt) : '')),
      h('td', { 'data-label': t('usage.model') }, data(e.model)),
      h('td', { 'data-label': t('usage.inputTokens'), class: 'num' }, number(e.inputTokens)),
      h('td', { 'data-label': t('usage.outputTokens'), class: 'num' }, number(e.outputTokens)),
      h('td', { 'data-label': t('usage.cost'), class: 'num' }, money(e.costUsd)))));
    if (this.events.length === 0) {
      this.body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, t('usage.none'))));
    }
    this.more.hidden = !this.next;
    this.drawChart();
  }

  /** Spend per local calendar day of the loaded events, oldest day on the left. */
  drawChart() {
    const byDay = new Map();
    for (const e of this.events) {
      if (!e.occurredAt) {
        continue;
      }
      const d = new Date(e.occurredAt);
      const k = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
      byDay.set(k, (byDay.get(k) || []).concat(e.costUsd));
    }
    const days = [...byDay.keys()].sort((a, b) => a - b).slice(-31);
    const totals = days.map((k) => sumDecimals(byDay.get(k)));
    const caption = h('figcaption', {}, t('usage.chart'));
    if (days.length === 0) {
      this.chart.replaceChildren(caption, h('p', { class: 'hint' }, t('usage.none')));
      return;
    }
    const max = Math.max(...totals.map(Number), 1e-8);
    const width = Math.max(days.length * 40, 120);
    const chart = svg('svg', { viewBox: `0 0 ${width} 140`, role: 'img', 'aria-label': t('usage.chart'),
      class: 'chart-svg' });
    days.forEach((k, i) => {
      const height = Math.max(1, (Number(totals[i]) / max) * 100);
      chart.append(svg('rect', { x: i * 40 + 6, y: 110 - height, width: 28, height, class: 'chart-bar' },
        svg('title', {}, day(new Date(k)) + ': ' + money(totals[i]))));
      chart.append(svg('text', { x: i * 40 + 20, y: 128, 'text-anchor': 'middle', class: 'chart-label' },
        day(new Date(k))));
    });
    const list = h('ul', { class: 'visually-hidden' },
      days.map((k, i) => h('li', {}, day(new Date(k)) + ': ' + money(totals[i]))));
    this.chart.replaceChildren(caption, chart, list);
  }
}

customElements.define('qa-usage', QaUsage);
