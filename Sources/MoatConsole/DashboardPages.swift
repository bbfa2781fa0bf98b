/// The markup, script and style of the owner's pages (served by ``DashboardRoutes`` and
/// ``ConsoleRoutes``). The markup here is static; the console's data pages are Mustache templates
/// (``ConsoleTemplates``).
enum DashboardPages {
    static let setup = """
        <section id="setup">
        <h2>Set up the owner</h2>
        <p>Choose the password you will log in with: at least 12 characters; a passphrase of a few words is good.</p>
        <form id="setup-form">
        <label>Username <input name="username" id="setup-username" autocomplete="username" value="owner" required></label>
        <label>Password <input name="password" id="setup-password" type="password" autocomplete="new-password" minlength="12" maxlength="1024" required></label>
        <label>Password again <input name="confirm" id="setup-confirm" type="password" autocomplete="new-password" required></label>
        <button type="submit" id="setup-submit">Set up</button>
        </form>
        </section>
        """

    static let login = """
        <section id="login">
        <h2>Log in</h2>
        <form id="login-form">
        <label>Username <input name="username" id="login-username" autocomplete="username" required></label>
        <label>Password <input name="password" id="login-password" type="password" autocomplete="current-password" required></label>
        <label>Code from your authenticator app, or a recovery code (if you turned two-factor on)
        <input name="code" id="login-code" autocomplete="one-time-code" inputmode="text"></label>
        <button type="submit" id="login-submit">Log in</button>
        </form>
        </section>
        """

    static let settings = """
        <section id="owner" hidden>
        <p>Logged in through <span id="owner-via"></span>.</p>
        </section>
        <section id="totp" hidden>
        <h2>Two-factor login (TOTP)</h2>
        <p id="totp-state"></p>
        <form id="totp-start-form"><label>Your password (to change a login factor)
        <input id="totp-password" type="password" autocomplete="current-password" required></label>
        <button type="submit" id="totp-start">Turn on two-factor login</button></form>
        <div id="totp-enrol" hidden>
        <p>Scan this code with your authenticator app, or type the secret <code id="totp-secret"></code>.</p>
        <div id="totp-qr" role="img" aria-label="QR code of the TOTP secret"></div>
        <form id="totp-form"><label>Code from the app <input id="totp-code" autocomplete="one-time-code" required></label>
        <button type="submit">Confirm</button></form>
        </div>
        <div id="totp-codes" hidden><p>Recovery codes — each works once; store them offline:</p><pre id="totp-code-list"></pre></div>
        </section>
        <section id="tokens" hidden>
        <h2>API tokens</h2>
        <form id="token-form">
        <label>Name <input id="token-name" required maxlength="64"></label>
        <label>Scope <select id="token-scope"><option>read</option><option>write</option><option>admin</option></select></label>
        <label>Expires <input id="token-expires" value="30d" size="6"></label>
        <button type="submit">Create token</button>
        </form>
        <p id="token-new" hidden>New token (shown once): <code id="token-value"></code></p>
        <table><thead><tr><th>Prefix</th><th>Name</th><th>Scope</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr></thead>
        <tbody id="token-rows"></tbody></table>
        </section>
        <section id="danger" hidden>
        <h2>Sessions</h2>
        <button id="revoke-all">Log out everywhere</button>
        </section>
        <section id="audit" hidden>
        <h2>Recent audit entries</h2>
        <table><thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Outcome</th><th>Source</th></tr></thead>
        <tbody id="audit-rows"></tbody></table>
        </section>
        """

    static let style = """
        :root { --ink: #1b1f24; --muted: #4a5360; --line: #d0d7de; --ok: #116329; --bad: #a40e26; --warn: #7d4e00; --link: #0a4fb3; }
        * { box-sizing: border-box; }
        body { font-family: system-ui, sans-serif; margin: 0; color: var(--ink); background: #fff; line-height: 1.45; }
        header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem; padding: 0.6rem 1rem; border-bottom: 1px solid var(--line); background: #f6f8fa; }
        header.top .brand { font-weight: 700; font-size: 1.2rem; color: var(--ink); text-decoration: none; }
        nav ul { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; list-style: none; margin: 0; padding: 0; }
        nav a { color: var(--link); text-decoration: none; padding: 0.2rem 0; }
        nav a[aria-current="page"] { color: var(--ink); font-weight: 700; border-bottom: 2px solid var(--ink); }
        .who { margin-left: auto; font-size: 0.9rem; color: var(--muted); }
        main { margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; }
        footer { margin: 2rem auto 1rem; max-width: 60rem; padding: 0.5rem 1rem; border-top: 1px solid var(--line); font-size: 0.85rem; color: var(--muted); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible { outline: 3px solid #0a4fb3; outline-offset: 2px; }
        label { display: block; margin: 0.5rem 0; }
        input, select { font: inherit; padding: 0.25rem; max-width: 100%; }
        button { font: inherit; padding: 0.3rem 0.8rem; cursor: pointer; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 0.3rem; font-size: 0.9rem; vertical-align: top; }
        .scroll { overflow-x: auto; }
        #message { color: var(--bad); }
        #message:empty { display: none; }
        #message.ok, .notice.ok { color: var(--ok); }
        .notice { font-weight: 600; }
        code, pre { word-break: break-all; white-space: pre-wrap; font-size: 0.85rem; }
        #totp-qr svg { width: 14rem; height: 14rem; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: 0.75rem; margin: 1rem 0; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; }
        .card .value { font-size: 1.6rem; font-weight: 700; display: block; }
        .posture { list-style: none; padding: 0; }
        .posture li { border-left: 6px solid var(--line); padding: 0.3rem 0.6rem; margin: 0.4rem 0; }
        .posture li.pass { border-color: var(--ok); }
        .posture li.warn { border-color: var(--warn); }
        .posture li.fail { border-color: var(--bad); }
        .status-pass { color: var(--ok); font-weight: 700; }
        .status-warn { color: var(--warn); font-weight: 700; }
        .status-fail { color: var(--bad); font-weight: 700; }
        .fix { color: var(--muted); }
        svg.chart { width: 100%; height: auto; max-height: 12rem; }
        svg.chart .messages { fill: #0a4fb3; }
        svg.chart .tools { fill: #bf8700; }
        svg.chart .axis { stroke: var(--muted); stroke-width: 1; }
        svg.chart text { fill: var(--muted); font-size: 10px; }
        .legend .m { color: #0a4fb3; font-weight: 700; }
        .legend .t { color: #8a6100; font-weight: 700; }
        .approval { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.8rem 0; }
        .approval h3 { margin: 0 0 0.4rem; font-size: 1.05rem; }
        .approval dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.8rem; margin: 0.4rem 0; }
        .approval dt { font-weight: 600; }
        .approval dd { margin: 0; min-width: 0; }
        .actions { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: end; }
        .actions form { display: flex; gap: 0.5rem; align-items: end; flex-wrap: wrap; }
        .approve { background: #116329; color: #fff; border: 1px solid #0b4a1e; border-radius: 4px; }
        .deny { background: #fff; color: var(--bad); border: 1px solid var(--bad); border-radius: 4px; }
        .meta { color: var(--muted); }
        .turn { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.8rem 0; }
        .turn.tainted { border-left: 6px solid var(--warn); }
        .turn h2 { font-size: 1.05rem; margin: 0 0 0.4rem; }
        .badge-taint { display: inline-block; background: #fff1c7; color: var(--warn); border: 1px solid var(--warn); border-radius: 4px; padding: 0 0.35rem; font-size: 0.85rem; font-weight: 700; }
        .why, .taint-cause { color: var(--warn); }
        .messages { list-style: none; padding: 0; margin: 0.4rem 0; }
        .message { border-left: 3px solid var(--line); padding: 0.2rem 0.6rem; margin: 0.3rem 0; }
        .message.user { border-color: #0a4fb3; }
        .message.tool { border-color: #bf8700; background: #fbfaf6; }
        .message .role { font-weight: 700; font-size: 0.85rem; color: var(--muted); }
        .message pre { margin: 0.2rem 0; }
        .asks { margin: 0.2rem 0; }
        .decision-pending, .decision-refused, .decision-invalid { color: var(--bad); font-weight: 600; }
        .decision-ran, .decision-ran-reported { color: var(--ok); font-weight: 600; }
        .audit-filter { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: 0 0.75rem; align-items: end; }
        .audit-filter input { width: 100%; box-sizing: border-box; }
        .inline-form { display: inline-block; margin: 0 0.5rem 0.5rem 0; }
        code.action { white-space: nowrap; word-break: normal; }
        .pairing { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.8rem 0; }
        .pairing h3 { margin: 0 0 0.3rem; font-size: 1.05rem; }
        .code { font-family: ui-monospace, monospace; letter-spacing: 0.05em; }
        fieldset { border: 1px solid var(--line); border-radius: 4px; display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 0.2rem 0.8rem; }
        fieldset label { margin: 0.2rem 0; }
        .ceilings button { margin-top: 0.4rem; }
        .trust-form { display: flex; flex-wrap: wrap; gap: 0.3rem 0.6rem; align-items: end; }
        .trust-form label, label.inline { margin: 0; }
        @media (max-width: 40rem) { .who { margin-left: 0; width: 100%; } .approval dl { grid-template-columns: 1fr; } }
        """

    static let script = """
        "use strict";
        // Moat's owner pages. Every call goes to this gateway's own /api/ routes; the session cookie is
        // HttpOnly (never visible here) and every call sends the session's CSRF token in X-CSRF-Token.
        // Login and setup hand out the token once; it is kept in this origin's localStorage (scoped to
        // scheme, host and port, unlike the cookie), so a listener on another local port that receives
        // the cookie cannot use it.
        const csrfKey = "moat.csrf";
        let csrf = localStorage.getItem(csrfKey);
        function keepCSRF(token) { csrf = token || null; if (csrf) localStorage.setItem(csrfKey, csrf); else localStorage.removeItem(csrfKey); }
        const $ = (id) => document.getElementById(id);
        function say(text, ok) { const m = $("message"); m.textContent = text || ""; m.className = ok ? "ok" : ""; }
        async function api(method, path, body) {
          const headers = { "Accept": "application/json" };
          if (body !== undefined) headers["Content-Type"] = "application/json";
          if (csrf) headers["X-CSRF-Token"] = csrf;
          const response = await fetch(path, { method, headers, credentials: "same-origin",
            body: body === undefined ? undefined : JSON.stringify(body) });
          let data = null;
          if (response.status !== 204) { try { data = await response.json(); } catch (e) { data = null; } }
          if (!response.ok) {
            const error = new Error((data && data.error) || ("HTTP " + response.status));
            error.status = response.status;
            throw error;
          }
          return data;
        }
        function cell(row, text) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); row.appendChild(td); return td; }

        async function setupPage() {
          const token = location.hash.slice(1);
          history.replaceState(null, "", "/setup");
          const state = await api("GET", "/api/setup");
          if (!state.required) { say("Moat is already set up."); location.replace("/login"); return; }
          if (!token) { say("This page needs the link printed by `moat serve` (it ends in #…)."); return; }
          $("setup-form").addEventListener("submit", async (event) => {
            event.preventDefault();
            if ($("setup-password").value !== $("setup-confirm").value) { say("The two passwords differ."); return; }
            try {
              const result = await api("POST", "/api/setup", { token, username: $("setup-username").value,
                password: $("setup-password").value });
              keepCSRF(result.csrf_token);
              location.replace("/");
            } catch (error) { say(error.message); }
          });
        }

        async function loginPage() {
          $("login-form").addEventListener("submit", async (event) => {
            event.preventDefault();
            const body = { username: $("login-username").value, password: $("login-password").value };
            if ($("login-code").value) body.code = $("login-code").value;
            try {
              const result = await api("POST", "/api/auth/login", body);
              keepCSRF(result.csrf_token);
              location.replace("/");
            } catch (error) { say(error.message); $("login-password").value = ""; }
          });
        }

        async function loadTokens() {
          const data = await api("GET", "/api/tokens");
          const rows = $("token-rows");
          rows.replaceChildren();
          for (const token of data.tokens) {
            const row = document.createElement("tr");
            cell(row, token.prefix); cell(row, token.name); cell(row, token.scope); cell(row, token.created_at);
            cell(row, token.last_used_at || "never"); cell(row, token.revoked_at ? "revoked" : (token.expires_at || "never"));
            const action = cell(row, "");
            if (token.active) {
              const button = document.createElement("button");
              button.textContent = "Revoke";
              button.addEventListener("click", async () => {
                try { await api("DELETE", "/api/tokens/" + encodeURIComponent(token.prefix)); await loadTokens(); say("Revoked.", true); }
                catch (error) { say(error.message); }
              });
              action.appendChild(button);
            }
            rows.appendChild(row);
          }
        }

        async function loadAudit() {
          const data = await api("GET", "/api/audit?limit=20");
          const rows = $("audit-rows");
          rows.replaceChildren();
          for (const entry of data.entries) {
            const row = document.createElement("tr");
            cell(row, entry.sequence); cell(row, entry.time); cell(row, entry.actor); cell(row, entry.action);
            cell(row, entry.outcome); cell(row, entry.source_ip);
            rows.appendChild(row);
          }
        }

        // The console's forms (approve, deny) post to the page's own routes; the token goes into the form
        // as it is sent, from this origin's storage: the pages themselves never hold it.
        function consoleForms() {
          for (const form of document.querySelectorAll("form[method=post]")) {
            form.addEventListener("submit", () => {
              for (const field of form.querySelectorAll("input[name=csrf_token]")) field.value = csrf || "";
              // A long run (verifying the whole audit log) says it is running until its answer replaces the page.
              const state = form.dataset.progress && $(form.dataset.progress);
              if (state) state.textContent = "Running: " + form.dataset.progressText;
            });
          }
          const logout = $("logout");
          if (logout) logout.addEventListener("click", async () => {
            try { await api("POST", "/api/auth/logout"); } finally { keepCSRF(null); location.replace("/login"); }
          });
        }

        async function settingsPage() {
          let session;
          try { session = await api("GET", "/api/auth/session"); }
          catch (error) {
            if (error.status === 401 || error.status === 403) { keepCSRF(null); location.replace("/login"); return; }
            say(error.message); return;
          }
          if (session.csrf_token) keepCSRF(session.csrf_token);
          $("owner-via").textContent = session.via;
          for (const id of ["owner", "totp", "tokens", "danger", "audit"]) $(id).hidden = false;
          $("totp-state").textContent = session.totp_enabled ? "Two-factor login is on." : "Two-factor login is off.";
          $("revoke-all").addEventListener("click", async () => {
            try { await api("POST", "/api/auth/revoke-all", {}); keepCSRF(null); location.replace("/login"); } catch (error) { say(error.message); }
          });
          $("totp-start-form").addEventListener("submit", async (event) => {
            event.preventDefault();
            try {
              const enrolment = await api("POST", "/api/auth/totp/enrol", { password: $("totp-password").value });
              $("totp-password").value = "";
              $("totp-secret").textContent = enrolment.secret;
              // Parsed, not assigned as HTML: the SVG is drawn by Moat and holds no script; the CSP
              // (no data: images) rules out an <img src="data:…">.
              const svg = new DOMParser().parseFromString(enrolment.qr_svg, "image/svg+xml").documentElement;
              $("totp-qr").replaceChildren(document.importNode(svg, true));
              $("totp-enrol").hidden = false;
            } catch (error) { say(error.message); }
          });
          $("totp-form").addEventListener("submit", async (event) => {
            event.preventDefault();
            try {
              const result = await api("POST", "/api/auth/totp/confirm", { code: $("totp-code").value });
              $("totp-enrol").hidden = true;
              $("totp-code-list").textContent = result.recovery_codes.join("\\n");
              $("totp-codes").hidden = false;
              $("totp-state").textContent = "Two-factor login is on.";
              say("Two-factor login is on.", true);
            } catch (error) { say(error.message); }
          });
          $("token-form").addEventListener("submit", async (event) => {
            event.preventDefault();
            try {
              const created = await api("POST", "/api/tokens", { name: $("token-name").value,
                scope: $("token-scope").value, expires: $("token-expires").value });
              $("token-value").textContent = created.token;
              $("token-new").hidden = false;
              await loadTokens();
            } catch (error) { say(error.message); }
          });
          await Promise.all([loadTokens(), loadAudit()]);
        }

        document.addEventListener("DOMContentLoaded", () => {
          consoleForms();
          const pages = { setup: setupPage, login: loginPage, settings: settingsPage };
          const run = pages[document.body.dataset.page];
          if (run) run().catch((error) => say(error.message));
        });
        """
}
