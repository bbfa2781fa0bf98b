import Foundation
import Mustache

/// The console's Mustache templates, compiled into the binary (no file to find at run time: the static
/// `./install.sh` build carries them). `{{name}}` escapes HTML; the one triple-mustache, the layout's
/// `{{{body}}}`, takes a page these same templates rendered, and the chart's numbers are computed here.
///
/// The layout's `<meta name="referrer" content="same-origin">` relaxes the header's `no-referrer` for
/// this origin only: under `no-referrer` a browser sends `Origin: null` with a form post, which the
/// Host/Origin guard rightly refuses; other sites still get no Referer.
enum ConsoleTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="same-origin">
        <title>{{title}} — Moat</title>
        <link rel="stylesheet" href="{{stylePath}}">
        <script src="{{scriptPath}}" defer></script>
        </head>
        <body data-page="{{page}}">
        <header class="top">
        <a class="brand" href="/">Moat</a>
        {{#owner}}
        <nav aria-label="Console"><ul>
        {{#nav}}<li><a href="{{path}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a></li>{{/nav}}
        </ul></nav>
        <span class="who">Logged in as <strong id="owner-name">{{owner}}</strong>
        <button id="logout" type="button">Log out</button></span>
        {{/owner}}
        </header>
        <main>
        <h1>{{title}}</h1>
        <p id="message" role="status">{{message}}</p>
        {{{body}}}
        </main>
        <footer>Moat — a local-first security gateway for your AI agent. Pages work without JavaScript; forms need it for their CSRF token.</footer>
        </body>
        </html>
        """

    static let overview = """
        <section aria-labelledby="now-h">
        <h2 id="now-h">Now</h2>
        <div class="cards">
        <div class="card"><span class="value" id="uptime">{{uptime}}</span>gateway uptime</div>
        <div class="card"><a href="/approvals"><span class="value" id="pending-count">{{pending}}</span>pending approvals</a></div>
        <div class="card"><a href="/contacts"><span class="value" id="pairing-count">{{pairings}}</span>pairing requests</a></div>
        <div class="card"><span class="value" id="messages-today">{{messagesToday}}</span>messages today (UTC)</div>
        <div class="card"><span class="value" id="tools-today">{{toolCallsToday}}</span>tool calls today (UTC)</div>
        </div>
        <p id="audit-verify">{{#verify}}Last audit verification: <span class="status-{{status}}">{{outcome}}</span> at {{time}}.{{/verify}}{{^verify}}The audit log has not been verified yet: run <code>moat audit verify</code>.{{/verify}}</p>
        </section>
        <section aria-labelledby="activity-h">
        <h2 id="activity-h">Activity, last 24 hours</h2>
        <p class="legend"><span class="m">■</span> messages <span class="t">■</span> tool calls (per hour, UTC; the tallest bar is {{chart.max}})</p>
        <svg class="chart" id="activity" viewBox="0 0 {{chart.width}} {{chart.height}}" role="img" aria-label="{{chart.summary}}">
        {{#chart.bars}}<rect class="messages" x="{{mx}}" y="{{my}}" width="{{w}}" height="{{mh}}"><title>{{label}}</title></rect><rect class="tools" x="{{tx}}" y="{{ty}}" width="{{w}}" height="{{th}}"><title>{{label}}</title></rect>{{/chart.bars}}
        <line class="axis" x1="0" y1="{{chart.base}}" x2="{{chart.width}}" y2="{{chart.base}}"></line>
        {{#chart.ticks}}<text x="{{x}}" y="{{y}}">{{label}}</text>{{/chart.ticks}}
        </svg>
        </section>
        <section aria-labelledby="posture-h">
        <h2 id="posture-h">Posture</h2>
        {{^posture}}<p>The posture checks are not available here: run <code>moat doctor</code>.</p>{{/posture}}
        <ul class="posture" id="posture">
        {{#posture}}<li class="{{status}}"><span class="status-{{status}}">{{statusLabel}}</span> <strong>{{check}}</strong>: {{message}}{{#fix}}<br><span class="fix">Fix: {{fix}}</span>{{/fix}}</li>{{/posture}}
        </ul>
        </section>
        """

    static let approvals = """
        {{#notice}}<p class="notice{{#ok}} ok{{/ok}}" id="notice" role="status">{{text}}</p>{{/notice}}
        <section aria-labelledby="pending-h">
        <h2 id="pending-h">Pending ({{pendingCount}})</h2>
        {{^pending}}<p id="no-pending">Nothing is waiting for you.</p>{{/pending}}
        {{#pending}}
        <article class="approval" id="approval-{{id}}">
        <h3><code>{{tool}}</code> for {{principal}}</h3>
        <dl>
        <dt>Level</dt><dd>{{domain}} — held for your approval</dd>
        {{#why}}<dt>Why</dt><dd class="why">{{why}}</dd>{{/why}}
        <dt>Destination</dt><dd>{{destination}}</dd>
        <dt>Arguments</dt><dd>{{#long}}<details><summary><code>{{short}}</code> (show all)</summary><pre class="arguments">{{arguments}}</pre></details>{{/long}}{{^long}}<pre class="arguments">{{arguments}}</pre>{{/long}}</dd>
        <dt>Asked</dt><dd>{{created}}; expires {{expires}}</dd>
        <dt>Id</dt><dd><code>{{id}}</code></dd>
        </dl>
        <div class="actions">
        <form method="post" action="/approvals/{{id}}/approve">
        <input type="hidden" name="csrf_token" value="">
        <button type="submit" class="approve" id="approve-{{id}}">Approve and run this call</button>
        </form>
        <form method="post" action="/approvals/{{id}}/deny">
        <input type="hidden" name="csrf_token" value="">
        <label>Reason (optional) <input name="reason" maxlength="200" id="reason-{{id}}"></label>
        <button type="submit" class="deny" id="deny-{{id}}">Deny</button>
        </form>
        </div>
        </article>
        {{/pending}}
        </section>
        <section aria-labelledby="history-h">
        <h2 id="history-h">History</h2>
        {{^hasHistory}}<p>No decided approvals yet.</p>{{/hasHistory}}
        {{#hasHistory}}<div class="scroll"><table id="history"><thead><tr><th>Asked</th><th>Tool</th><th>Principal</th><th>Level</th><th>Status</th><th>Arguments</th></tr></thead>
        <tbody>{{#history}}<tr><td>{{created}}</td><td><code>{{tool}}</code></td><td>{{principal}}</td><td>{{domain}}</td><td>{{status}}</td><td><code>{{short}}</code></td></tr>{{/history}}</tbody></table></div>{{/hasHistory}}
        </section>
        """

    /// Every template, compiled once.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in [("layout", layout), ("overview", overview), ("approvals", approvals)] + pages {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("the console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// `name` rendered with `values` (HTML-escaped by the engine).
    static func render(_ name: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: name) ?? ""
    }
}
