// Message catalogs (en.json, zh-CN.json) and Intl formatting for the chosen language. The browser's
// language is taken first; a choice made with the switch is remembered in localStorage.

export const LANGUAGES = [
  { tag: 'en', name: 'English' },
  { tag: 'zh-CN', name: '简体中文' },
];
const CHOICE = 'qa.lang';
const catalogs = {};
let lang = 'en';

export function pick(preferred = navigator.languages || [navigator.language]) {
  const saved = localStorage.getItem(CHOICE);
  if (LANGUAGES.some((l) => l.tag === saved)) {
    return saved;
  }
  for (const p of preferred) {
    const lower = String(p).toLowerCase();
    if (lower.startsWith('zh')) {
      return 'zh-CN';
    }
    if (lower.startsWith('en')) {
      return 'en';
    }
  }
  return 'en';
}

export async function load(tag) {
  if (!catalogs[tag]) {
    const response = await fetch(tag + '.json', { cache: 'no-cache' });
    catalogs[tag] = await response.json();
  }
  lang = tag;
  document.documentElement.lang = tag;
}

export function remember(tag) {
  localStorage.setItem(CHOICE, tag);
}

export function current() {
  return lang;
}

/** The message for key, {name} placeholders filled in; a missing key shows as itself. */
export function t(key, params = {}) {
  const text = (catalogs[lang] && catalogs[lang][key]) ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** A USD amount (a decimal string, never a float: Intl formats the string's own digits). */
export function money(amount) {
  return new Intl.NumberFormat(lang, {
    style: 'currency',
    currency: 'USD',
    minimumFractionDigits: 2,
    maximumFractionDigits: 8,
  }).format(amount || '0');
}

export function number(n) {
  return new Intl.NumberFormat(lang).format(n || 0);
}

export function dateTime(iso) {
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(
    new Date(iso));
}

export function day(date) {
  return new Intl.DateTimeFormat(lang, { month: 'short', day: 'numeric' }).format(date);
}

/** "in 6 days", "2 hours ago": the largest unit that fits, rounded. */
export function relative(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(seconds);
  const f = new Intl.RelativeTimeFormat(lang, { numeric: 'always' });
  if (abs < 45) {
    return f.format(Math.round(seconds), 'second');
  }
  if (abs < 45 * 60) {
    return f.format(Math.round(seconds / 60), 'minute');
  }
  if (abs < 36 * 3600) {
    return f.format(Math.round(seconds / 3600), 'hour');
  }
  if (abs < 365 * 86400) {
    return f.format(Math.round(seconds / 86400), 'day');
  }
  return f.format(Math.round(seconds / (365 * 86400)), 'year');
}
