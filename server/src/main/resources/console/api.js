// The admin API over the Connect protocol (unary, JSON): one function for every RPC of
// quota.v1.KeyAdminService. The token lives in sessionStorage only: never a cookie, a URL or a log.

const SERVICE = '/quota.v1.KeyAdminService/';
const TOKEN = 'qa.adminToken';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The request field a message names ("quota_usd must ..."), or null. */
  field() {
    const m = /^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)\b/.exec(this.message || '');
    return m ? m[1].replace(/^key\./, '') : null;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN, value);
  } else {
    sessionStorage.removeItem(TOKEN);
  }
}

/** Calls one RPC; resolves to the response message as JSON, rejects with an ApiError. */
export async function call(method, request = {}, bearer = token()) {
  const headers = {
    'content-type': 'application/json',
    'connect-protocol-version': '1',
    'connect-timeout-ms': '30000',
  };
  if (bearer) {
    headers.authorization = 'Bearer ' + bearer;
  }
  let response;
  try {
    response = await fetch(SERVICE + method, {
      method: 'POST',
      headers,
      body: JSON.stringify(request),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 'unavailable', '');
  }
  let body = {};
  try {
    body = await response.json();
  } catch (e) {
    body = {};
  }
  if (!response.ok) {
    throw new ApiError(response.status, body.code || 'unknown', body.message || '');
  }
  return body;
}
