// DOM building without HTML strings: every child that is a string becomes a text node, so a
// name from the database is shown as its characters and never parsed as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Text that came from the database: marked so (tests tell data from the page's own words). */
export function data(text, tag = 'span', attrs = {}) {
  return h(tag, { ...attrs, class: ((attrs.class || '') + ' data').trim() }, text);
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/**
 * A modal dialog (keyboard: focus moves in, Esc cancels, Tab stays inside as <dialog> does).
 * build(close) returns the dialog's content; close(value) ends it. Resolves to that value, or null
 * when cancelled.
 */
export function modal(build, labelledBy) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': labelledBy });
    let done = false;
    const close = (value) => {
      if (!done) {
        done = true;
        dialog.close();
        dialog.remove();
        resolve(value);
      }
    };
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(null);
    });
    append(dialog, [build(close)]);
    document.body.append(dialog);
    dialog.showModal();
    const first = dialog.querySelector('[autofocus]') || dialog.querySelector('input, select, button');
    if (first) {
      first.focus();
    }
  });
}

/** Exact sum of decimal strings (USD, at most 8 places) as a decimal string. */
export function sumDecimals(values) {
  let total = 0n;
  for (const v of values) {
    const [whole, frac = ''] = String(v || '0').split('.');
    total += BigInt(whole) * 100000000n + BigInt((frac + '00000000').slice(0, 8));
  }
  const s = total.toString().padStart(9, '0');
  return s.slice(0, -8) + '.' + s.slice(-8);
}
