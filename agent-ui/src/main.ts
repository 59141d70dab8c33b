import { tauriApi } from "./api";
import { App } from "./app";
import "./style.css";

const root = document.getElementById("app");
if (root) void new App(root, tauriApi).start();
