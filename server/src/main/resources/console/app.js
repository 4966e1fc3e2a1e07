// The console's root: sign-in, the header (language switch, sign-out) and the two screens.
import { ApiError, call, setToken, token } from './api.js';
import { h } from './dom.js';
import { LANGUAGES, current, load, pick, remember, t } from './i18n.js';
import './keys.js';
import './usage.js';

class QaConsole extends HTMLElement {
  async connectedCallback() {
    await load(pick());
    window.addEventListener('hashchange', () => this.render());
    this.addEventListener('qa-signed-out', (e) => this.signOut(e.detail));
    this.render();
  }

  render(notice = null) {
    document.title = t('app.title');
    this.replaceChildren();
    if (!token()) {
      this.append(this.header(false), this.signIn(notice));
      return;
    }
    const usage = /^#\/keys\/([^/]+)\/usage$/.exec(location.hash);
    const main = h('main', { class: 'main' });
    if (usage) {
      const el = document.createElement('qa-usage');
      el.keyId = decodeURIComponent(usage[1]);
      main.append(el);
    } else {
      main.append(document.createElement('qa-key-list'));
    }
    this.append(this.header(true), main);
  }

  header(signedIn) {
    const select = h(
      'select',
      {
        id: 'language',
        'aria-label': t('app.language'),
        onchange: async (e) => {
          remember(e.target.value);
          await load(e.target.value);
          this.render();
        },
      },
      LANGUAGES.map((l) =>
        h('option', { value: l.tag, lang: l.tag, selected: l.tag === current() }, l.name)),
    );
    return h(
      'header',
      { class: 'top' },
      h('a', { class: 'brand', href: '#/keys' }, t('app.title')),
      h('div', { class: 'top-actions' },
        select,
        signedIn
          ? h('button', { type: 'button', id: 'sign-out', onclick: () => this.signOut() },
            t('signIn.signOut'))
          : null),
    );
  }

  signIn(notice) {
    const input = h('input', {
      id: 'token',
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      autofocus: true,
      'aria-describedby': 'token-help',
    });
    const message = h('p', { id: 'sign-in-error', class: 'error', role: 'alert' },
      notice ? t(notice) : '');
    const form = h(
      'form',
      {
        class: 'card sign-in',
        onsubmit: async (e) => {
          e.preventDefault();
          message.textContent = '';
          const value = input.value.trim();
          try {
            await call('ListKeys', { pageSize: 1 }, value);
          } catch (err) {
            message.textContent =
              err instanceof ApiError && err.status === 401 ? t('signIn.refused') : t('error.network');
            input.select();
            return;
          }
          setToken(value);
          if (!location.hash) {
            location.hash = '#/keys';
          }
          this.render();
        },
      },
      h('h1', {}, t('signIn.heading')),
      h('label', { for: 'token' }, t('signIn.token')),
      input,
      h('p', { id: 'token-help', class: 'hint' }, t('signIn.help')),
      message,
      h('button', { type: 'submit', class: 'primary', id: 'sign-in' }, t('signIn.submit')),
    );
    return h('main', { class: 'main' }, form);
  }

  signOut(notice = null) {
    setToken(null);
    this.render(notice);
  }
}

customElements.define('qa-console', QaConsole);
