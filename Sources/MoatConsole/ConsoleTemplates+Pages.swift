extension ConsoleTemplates {
    static let conversations = """
        {{#notice}}<p class="notice" id="notice" role="status">{{notice}}</p>{{/notice}}
        {{^groups}}<p id="no-conversations">No conversations yet: <code>moat chat</code>, a channel or a webhook starts one.</p>{{/groups}}
        {{#groups}}
        <section class="principal">
        <h2>{{label}}</h2>
        <div class="scroll"><table class="conversations"><thead><tr><th>Last activity</th><th>Channel</th><th>Messages</th><th>Tool calls</th><th>Conversation</th></tr></thead>
        <tbody>{{#rows}}<tr><td>{{last}}</td><td>{{channel}}</td><td>{{messages}}</td><td>{{calls}}</td><td><a href="/conversations/{{id}}" id="conversation-{{id}}">{{id}}</a>{{^verified}} <span class="status-fail">its row does not verify (changed in moat.db?)</span>{{/verified}}</td></tr>{{/rows}}</tbody></table></div>
        </section>
        {{/groups}}
        """

    static let conversation = """
        {{#missing}}<p id="notice" class="notice">There is no such conversation. <a href="/conversations">All conversations</a></p>{{/missing}}
        {{^missing}}
        <p class="meta"><a href="/conversations">All conversations</a> · <span id="principal">{{principal}}</span> · channel {{channel}} · started {{created}} · {{messages}} messages, {{calls}} tool calls · <code>{{id}}</code></p>
        {{^verified}}<p class="notice">This conversation's row does not verify: its principal may have been changed in moat.db.</p>{{/verified}}
        {{#taint}}<p class="taint-now" id="taint-now"><span class="badge-taint">tainted</span> This conversation has read untrusted text, so its risky calls are held at most at suggest: {{taint}}</p>{{/taint}}
        {{#turns}}
        <article class="turn{{#tainted}} tainted{{/tainted}}" id="turn-{{id}}">
        <h2>Turn at {{started}}{{#tainted}} <span class="badge-taint">tainted</span>{{/tainted}}</h2>
        {{#tainted}}<p class="why">Tainted: {{why}}</p>{{/tainted}}
        {{#taintedHere}}<p class="taint-cause">This turn read: {{.}}</p>{{/taintedHere}}
        <ol class="messages">
        {{#messages}}<li class="message {{role}}"><span class="role">{{label}}</span>{{^empty}}<pre>{{content}}</pre>{{/empty}}{{#asks}}<p class="asks">asks for <code>{{.}}</code></p>{{/asks}}</li>{{/messages}}
        </ol>
        {{#hasCalls}}<div class="scroll"><table class="calls"><thead><tr><th>Tool call</th><th>Domain, level</th><th>Decision</th><th>Outcome</th><th>Arguments</th></tr></thead>
        <tbody>{{#calls}}<tr><td><code>{{tool}}</code> {{destination}}</td><td>{{domain}} {{level}}</td><td class="decision decision-{{decision}}">{{decision}}{{#decidedTainted}}<br><span class="why">decided while tainted: {{callTaint}}</span>{{/decidedTainted}}</td><td>{{outcome}}{{#hasApproval}}<br><a href="/approvals">approval {{approval}}</a>{{/hasApproval}}</td><td><code>{{short}}</code></td></tr>{{/calls}}</tbody></table></div>{{/hasCalls}}
        </article>
        {{/turns}}
        {{/missing}}
        """

    /// The page templates beyond the overview and approvals, by name.
    static let pages: [(String, String)] = [("conversations", conversations), ("conversation", conversation)]
}
