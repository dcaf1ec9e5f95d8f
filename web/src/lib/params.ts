/** What the page takes from its URL (docs/ui-protocol.md: the launch secret). */
import type { MicMode } from "./client";

export interface PageParams {
  secret: string | null;
  rawMic: boolean;
  forceFallback: boolean;
  mode: MicMode | null;
  theme: "light" | "dark" | null;
}

const SECRET_KEY = "voco.secret";

const truthy = (v: string | null) => v !== null && v !== "0" && v !== "false";

export function parseParams(search: string): Omit<PageParams, "secret"> & { urlSecret: string | null } {
  const q = new URLSearchParams(search);
  const mode = q.get("mode");
  const theme = q.get("theme");
  return {
    urlSecret: q.get("secret"),
    // `rawmic=1`: no echo cancellation / noise suppression / AGC (tests, or a headset).
    rawMic: truthy(q.get("rawmic")),
    // `decoder=fallback`: do not use WebCodecs for MP3 (tests of the fallback path).
    forceFallback: q.get("decoder") === "fallback",
    mode: mode === "ptt" || mode === "handsfree" ? mode : null,
    theme: theme === "light" || theme === "dark" ? theme : null,
  };
}

/** Read the secret, keep it for this tab (reloads), and take it out of the address bar. */
export function takeParams(): PageParams {
  const p = parseParams(location.search);
  let secret = p.urlSecret;
  try {
    if (secret) sessionStorage.setItem(SECRET_KEY, secret);
    else secret = sessionStorage.getItem(SECRET_KEY);
  } catch {
    /* storage disabled: the secret lives only in memory */
  }
  if (p.urlSecret) {
    const q = new URLSearchParams(location.search);
    q.delete("secret");
    const rest = q.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }
  return { secret, rawMic: p.rawMic, forceFallback: p.forceFallback, mode: p.mode, theme: p.theme };
}
