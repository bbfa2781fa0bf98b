import Hummingbird
import MoatHTTP
import Mustache

/// The console's `/chat` page: the owner talks to the agent through ``ChatSocket``. The page is
/// server-rendered like the others (behind ``ConsolePageMiddleware``); its script — its own
/// same-origin file, no inline script — asks for a live token with the session's CSRF token, opens the
/// socket offering the token as a subprotocol, streams the reply into the page, shows a held call with
/// a link to `/approvals`, and reconnects with a new token when the socket drops.
enum ChatPage {
    static func register(on router: Router<GatewayRequestContext>, auth: GatewayAuth) {
        let pages = router.group().add(middleware: ConsolePageMiddleware(auth))
        pages.get("/chat") { _, context -> Response in
            let body = compiled.render(["chatScript": script.path, "chatStyle": style.path])
            return ConsoleRoutes.page("chat", "Chat", body, path: "/chat", context: context)
        }
        for asset in [script, style] {
            router.get(RouterPath(asset.path)) { _, _ -> Response in asset.response }
        }
    }

    static let compiled: MustacheTemplate = {
        do {
            return try MustacheTemplate(string: template)
        } catch {
            preconditionFailure("the chat page's template does not parse: \(error)")
        }
    }()

    static let template = """
        <noscript><p>The chat needs JavaScript (it talks over a WebSocket). Every other page works without it, and <code>moat chat</code> works at the terminal.</p></noscript>
        <p id="chat-state" role="status">Connecting…</p>
        <ol id="chat-log" aria-live="polite" aria-label="Conversation"></ol>
        <form id="chat-form">
        <label for="chat-text">Message</label>
        <textarea id="chat-text" rows="3" maxlength="8000" required></textarea>
        <button type="submit" id="chat-send" disabled>Send</button>
        <button type="button" id="chat-new">New conversation</button>
        </form>
        <p class="fix">A call held for your approval shows here; decide it on <a href="/approvals">Approvals</a>.</p>
        <link rel="stylesheet" href="{{chatStyle}}">
        <script src="{{chatScript}}" defer></script>
        """

    static let script = ConsoleAsset(name: "chat", ext: "js", text: scriptText, type: "text/javascript; charset=utf-8")

    static let scriptText = """
        "use strict";
        // The console's chat. A WebSocket to this gateway's /api/chat/socket, opened with a single-use
        // live token (POST /api/chat/live-token, sent with the session's CSRF token) offered as the
        // subprotocol "moat.token.<token>" beside "moat.chat". Every reconnect asks for a new token.
        (() => {
          const $ = (id) => document.getElementById(id);
          let socket = null;
          let conversation = null;
          let current = null;
          let attempts = 0;
          const state = (text) => { $("chat-state").textContent = text; };
          function entry(kind, text) {
            const item = document.createElement("li");
            item.className = "chat-" + kind;
            item.textContent = text;
            $("chat-log").appendChild(item);
            item.scrollIntoView({ block: "nearest" });
            return item;
          }
          async function liveToken() {
            const response = await fetch("/api/chat/live-token", { method: "POST", credentials: "same-origin",
              headers: { "Accept": "application/json", "X-CSRF-Token": localStorage.getItem("moat.csrf") || "" } });
            let data = null;
            try { data = await response.json(); } catch (e) { data = null; }
            if (!response.ok) {
              const error = new Error((data && data.error) || ("HTTP " + response.status));
              error.status = response.status;
              throw error;
            }
            return data.token;
          }
          function later() {
            attempts = Math.min(attempts + 1, 5);
            setTimeout(connect, 1000 * attempts);
          }
          async function connect() {
            $("chat-send").disabled = true;
            state("Connecting…");
            let token;
            try { token = await liveToken(); }
            catch (error) {
              if (error.status === 401 || error.status === 403) { localStorage.removeItem("moat.csrf"); location.replace("/login"); return; }
              state("Could not get a chat token: " + error.message + " Trying again…");
              later();
              return;
            }
            const scheme = location.protocol === "https:" ? "wss://" : "ws://";
            const opened = new WebSocket(scheme + location.host + "/api/chat/socket", ["moat.chat", "moat.token." + token]);
            socket = opened;
            opened.addEventListener("message", (event) => {
              let frame;
              try { frame = JSON.parse(event.data); } catch (e) { return; }
              receive(frame);
            });
            opened.addEventListener("close", (event) => {
              if (socket === opened) socket = null;
              current = null;
              $("chat-send").disabled = true;
              if (event.code === 1008) { state("Your session ended: log in again to chat."); return; }
              state("Disconnected. Reconnecting with a new token…");
              later();
            });
          }
          function receive(frame) {
            switch (frame.type) {
            case "ready":
              attempts = 0;
              state("Connected.");
              $("chat-send").disabled = false;
              break;
            case "delta":
              if (!current || current.round !== frame.round) current = { round: frame.round, item: entry("agent", "") };
              current.item.textContent += frame.text;
              break;
            case "tool":
              if (frame.stage === "decided") entry("tool", "Tool " + frame.tool + ": " + frame.explanation);
              break;
            case "approval": {
              const item = entry("approval", "Held for your approval: " + frame.tool + " — " + frame.summary + " (id " + frame.approval_id + "). ");
              const link = document.createElement("a");
              link.href = "/approvals";
              link.textContent = "Decide on Approvals";
              item.appendChild(link);
              break;
            }
            case "budget":
              entry("notice", frame.message);
              break;
            case "done":
              conversation = frame.turn.conversation;
              if (!current && frame.turn.reply) entry("agent", frame.turn.reply);
              current = null;
              state("Connected.");
              $("chat-send").disabled = false;
              break;
            case "error":
              current = null;
              entry("error", frame.error);
              $("chat-send").disabled = !socket;
              break;
            }
          }
          document.addEventListener("DOMContentLoaded", () => {
            if (document.body.dataset.page !== "chat") return;
            $("chat-form").addEventListener("submit", (event) => {
              event.preventDefault();
              const text = $("chat-text").value.trim();
              if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
              entry("owner", text);
              const message = { type: "message", text };
              if (conversation) message.conversation = conversation;
              socket.send(JSON.stringify(message));
              $("chat-text").value = "";
              $("chat-send").disabled = true;
              state("The agent is answering…");
            });
            $("chat-new").addEventListener("click", () => {
              conversation = null;
              $("chat-log").replaceChildren();
              state(socket ? "Connected: a new conversation starts with your next message." : $("chat-state").textContent);
            });
            connect();
          });
        })();
        """

    static let style = ConsoleAsset(name: "chat", ext: "css", text: styleText, type: "text/css; charset=utf-8")

    static let styleText = """
        #chat-log { list-style: none; padding: 0; margin: 1rem 0; display: flex; flex-direction: column; gap: 0.5rem; }
        #chat-log li { border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 0.7rem; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 48rem; }
        #chat-log .chat-owner { align-self: flex-end; background: #eef4ff; }
        #chat-log .chat-agent { align-self: flex-start; }
        #chat-log .chat-tool, #chat-log .chat-notice { color: var(--muted); font-size: 0.9rem; }
        #chat-log .chat-approval { border-color: var(--warn); }
        #chat-log .chat-error { border-color: var(--bad); color: var(--bad); }
        #chat-text { width: 100%; font: inherit; padding: 0.4rem; }
        #chat-form button { margin-top: 0.4rem; }
        """
}
