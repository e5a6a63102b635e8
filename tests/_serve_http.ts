/**
 * The HTTP client side of the `ess serve` tests: a JSON GET and a text/plain POST, as the
 * dashboard and curl send them.
 *
 * @module
 */

/** GETs `url` and parses the JSON answer, whatever its status. */
export async function getJson(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** POSTs `body` as text/plain, as a control request is sent. */
export function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "text/plain", ...headers },
  });
}
