import React from "react";
import ReactDOM from "react-dom/client";
import "./index.css";
import App, { NoSecret } from "./App";
import { VocoClient, type MicMode } from "./lib/client";
import { takeParams } from "./lib/params";
import { applyTheme, initialTheme } from "./lib/theme";

const params = takeParams();
const theme = initialTheme(params.theme);
applyTheme(theme);

let storedMode: MicMode | null = null;
try {
  const v = localStorage.getItem("voco.mode");
  storedMode = v === "ptt" || v === "handsfree" ? v : null;
} catch {
  /* ignore */
}

const root = ReactDOM.createRoot(document.getElementById("root")!);
if (!params.secret) {
  root.render(<NoSecret theme={theme} />);
} else {
  const client = new VocoClient({
    secret: params.secret,
    rawMic: params.rawMic,
    forceFallback: params.forceFallback,
    mode: params.mode ?? storedMode ?? "handsfree",
  });
  root.render(
    <React.StrictMode>
      <App client={client} theme={theme} />
    </React.StrictMode>,
  );
  void client.start();
}
