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

    static let contacts = """
        {{#notice}}<p class="notice{{#ok}} ok{{/ok}}" id="notice" role="status">{{text}}</p>{{/notice}}
        <section aria-labelledby="pairing-h">
        <h2 id="pairing-h">Pairing requests</h2>
        <p>Someone who writes to the agent on a channel and is not a contact gets a code and nothing reaches the model. Approve the code they tell you with a ceiling per trust domain: the agent never acts for them above it.</p>
        {{^pairings}}<p id="no-pairings">No pairing request is waiting.</p>{{/pairings}}
        {{#pairings}}
        <article class="pairing" id="pairing-{{code}}">
        <h3>{{channel}} <code>{{sender}}</code></h3>
        <p>Code <strong class="code">{{code}}</strong>, valid until {{expires}}.</p>
        <form method="post" action="/contacts/pairing/approve" class="ceilings">
        <input type="hidden" name="csrf_token" value="">
        <input type="hidden" name="code" value="{{code}}">
        <fieldset><legend>Ceilings</legend>
        {{#domains}}<label>{{domain}} <select name="ceiling_{{domain}}" id="ceiling-{{code}}-{{domain}}">{{#levels}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/levels}}</select></label>{{/domains}}
        </fieldset>
        <button type="submit" class="approve" id="approve-pairing-{{code}}">Approve with these ceilings</button>
        </form>
        <form method="post" action="/contacts/pairing/deny">
        <input type="hidden" name="csrf_token" value="">
        <input type="hidden" name="code" value="{{code}}">
        <button type="submit" class="deny" id="deny-pairing-{{code}}">Deny</button>
        </form>
        </article>
        {{/pairings}}
        {{#denied}}<p class="denied">Denied: {{channel}} <code>{{sender}}</code> gets no new code until {{expires}}.</p>{{/denied}}
        {{#bindings}}<p class="binding">Owner binding on {{channel}}: send <strong class="code">{{code}}</strong> from your own account (valid until {{expires}}).</p>{{/bindings}}
        </section>
        <section aria-labelledby="contacts-h">
        <h2 id="contacts-h">Contacts</h2>
        {{^hasContacts}}<p id="no-contacts">No contacts yet.</p>{{/hasContacts}}
        {{#hasContacts}}<div class="scroll"><table id="contacts"><thead><tr><th>Contact</th><th>Channel</th><th>Sender</th><th>Ceilings</th><th>Added</th><th></th></tr></thead>
        <tbody>{{#contacts}}<tr id="contact-{{id}}"><td><code>{{id}}</code></td><td>{{channel}}</td><td><code>{{sender}}</code></td><td class="ceilings-list">{{ceilings}}</td><td>{{added}}</td><td><form method="post" action="/contacts/{{id}}/remove"><input type="hidden" name="csrf_token" value=""><button type="submit" class="deny" id="remove-{{id}}">Remove</button></form></td></tr>{{/contacts}}</tbody></table></div>{{/hasContacts}}
        </section>
        """

    static let trust = """
        {{#notice}}<p class="notice{{#ok}} ok{{/ok}}" id="notice" role="status">{{text}}</p>{{/notice}}
        <section aria-labelledby="levels-h">
        <h2 id="levels-h">Levels</h2>
        <p>0 none: refused · 1 inform: described, not run · 2 suggest: held for your approval · 3 act: runs and you are told · 4 full: runs. Raising to 3 or 4 needs the evidence the rule asks for (enough approvals of that domain since the last change), or force, which is recorded.</p>
        <div class="scroll"><table id="levels"><thead><tr><th>Domain</th><th>Level</th><th>Last change</th><th>Change it</th></tr></thead>
        <tbody>{{#domains}}<tr id="domain-{{domain}}"><td>{{domain}}</td><td class="level"><strong>{{level}}</strong> {{name}}{{#tampered}} <span class="status-fail">its row does not verify</span>{{/tampered}}</td><td>{{#hasChange}}{{changed}} by {{actor}}: {{reason}}{{/hasChange}}{{^hasChange}}default{{/hasChange}}</td>
        <td><form method="post" action="/trust/domain/{{domain}}" class="trust-form"><input type="hidden" name="csrf_token" value="">
        <label>Level <select name="level" id="level-{{domain}}">{{#levels}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/levels}}</select></label>
        <label>Reason <input name="reason" id="reason-{{domain}}" maxlength="300" required></label>
        <label class="inline"><input type="checkbox" name="force" id="force-{{domain}}"> force</label>
        <button type="submit" id="set-{{domain}}">Change</button></form></td></tr>{{/domains}}</tbody></table></div>
        </section>
        <section aria-labelledby="trust-history-h">
        <h2 id="trust-history-h">History</h2>
        {{^hasHistory}}<p>No changes yet.</p>{{/hasHistory}}
        {{#hasHistory}}<div class="scroll"><table id="trust-history"><thead><tr><th>#</th><th>When</th><th>Domain</th><th>From → to</th><th>Kind</th><th>By</th><th>Reason and evidence</th><th></th></tr></thead>
        <tbody>{{#history}}<tr id="change-{{id}}"><td>{{id}}</td><td>{{time}}</td><td>{{domain}}</td><td>{{from}} → {{to}}</td><td>{{kind}}</td><td>{{actor}}</td><td>{{reason}}{{#hasEvidence}}<br><span class="fix">evidence: {{evidence}}</span>{{/hasEvidence}}</td>
        <td><form method="post" action="/trust/rollback/{{id}}"><input type="hidden" name="csrf_token" value=""><label>Reason <input name="reason" id="rollback-reason-{{id}}" maxlength="300"></label><button type="submit" id="rollback-{{id}}">Roll back</button></form></td></tr>{{/history}}</tbody></table></div>{{/hasHistory}}
        </section>
        """

    static let vault = """
        {{#notice}}<p class="notice{{#ok}} ok{{/ok}}" id="notice" role="status">{{text}}</p>{{/notice}}
        <p>Secret values never leave the vault for a page: add and replace them with <code>moat vault add</code>. A secret reaches only the tools and hosts its policy names.</p>
        {{^hasSecrets}}<p id="no-secrets">The vault holds no secrets.</p>{{/hasSecrets}}
        {{#hasSecrets}}<div class="scroll"><table id="secrets"><thead><tr><th>Name</th><th>Tools</th><th>Hosts</th><th>Added</th><th>Replaced</th><th>Last use</th></tr></thead>
        <tbody>{{#secrets}}<tr><td><code>{{name}}</code></td><td>{{tools}}</td><td>{{hosts}}</td><td>{{added}}</td><td>{{updated}}</td><td class="last-use">{{lastUse}}</td></tr>{{/secrets}}</tbody></table></div>{{/hasSecrets}}
        """

    static let audit = """
        {{#notice}}<p class="notice{{#ok}} ok{{/ok}}" id="notice" role="status">{{text}}</p>{{/notice}}
        <section aria-labelledby="audit-filter-h">
        <h2 id="audit-filter-h">Filter</h2>
        <form method="get" action="/audit" class="audit-filter">
        <label>Since <input name="since" id="filter-since" value="{{since}}" placeholder="2026-11-23" maxlength="24"></label>
        <label>Until <input name="until" id="filter-until" value="{{until}}" placeholder="2026-11-24T08:00:00Z" maxlength="24"></label>
        <label>Actor <input name="actor" id="filter-actor" value="{{actor}}" placeholder="owner" maxlength="128"></label>
        <label>Action <input name="action" id="filter-action" value="{{action}}" placeholder="vault.*" maxlength="64"></label>
        <label>Outcome <input name="outcome" id="filter-outcome" value="{{outcome}}" placeholder="success" maxlength="64"></label>
        <label>Per page <input name="limit" id="filter-limit" value="{{limit}}" inputmode="numeric" maxlength="3"></label>
        <button type="submit" id="filter-apply">Filter</button> <a href="/audit">Clear</a>
        </form>
        <p>Times are UTC: a date or an RFC 3339 time; “until” is exclusive. An action ending in * matches a prefix. Export these entries (all of them, oldest first, as <code>moat audit export</code> writes them): <a href="{{csv}}" id="export-csv" download>CSV</a> · <a href="{{jsonl}}" id="export-jsonl" download>JSON lines</a></p>
        </section>
        <section aria-labelledby="audit-verify-h">
        <h2 id="audit-verify-h">Verify and checkpoint</h2>
        <p>{{#lastVerify}}Last verified {{time}}: <span id="last-verify" class="status-{{#ok}}pass{{/ok}}{{^ok}}fail{{/ok}}">{{outcome}}</span>.{{/lastVerify}}{{^lastVerify}}Not verified yet.{{/lastVerify}} Verify recomputes the whole chain and every signed checkpoint, as <code>moat audit verify</code>; the page comes back when it is done. A checkpoint is a signed note of the log's head: keep it somewhere this machine cannot change, and check the log against it with <code>moat audit verify --checkpoint FILE</code>.</p>
        <form method="post" action="/audit/verify" class="inline-form" data-progress="verify-state" data-progress-text="verifying every entry and checkpoint…"><input type="hidden" name="csrf_token" value=""><button type="submit" id="audit-verify">Verify the log</button> <span id="verify-state" role="status" aria-live="polite"></span></form>
        <form method="post" action="/audit/checkpoint" class="inline-form"><input type="hidden" name="csrf_token" value=""><button type="submit" id="audit-checkpoint">Download a signed checkpoint</button></form>
        </section>
        <section aria-labelledby="audit-entries-h">
        <h2 id="audit-entries-h">Entries, newest first</h2>
        {{^hasEntries}}<p id="no-entries">No entry matches.</p>{{/hasEntries}}
        {{#hasEntries}}<div class="scroll"><table id="audit-entries"><thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Target</th><th>Outcome</th><th>From</th><th>Details</th></tr></thead>
        <tbody>{{#entries}}<tr id="entry-{{seq}}"><td>{{seq}}</td><td>{{time}}</td><td>{{actor}}</td><td><code class="action">{{action}}</code></td><td>{{target}}</td><td>{{outcome}}</td><td>{{from}}</td><td><code>{{metadata}}</code></td></tr>{{/entries}}</tbody></table></div>{{/hasEntries}}
        <p>{{#newest}}<a href="{{newest}}" id="audit-newest">Newest</a> {{/newest}}{{#older}}<a href="{{older}}" id="audit-older">Older entries</a>{{/older}}</p>
        </section>
        """

    /// The page templates beyond the overview and approvals, by name.
    static let pages: [(String, String)] = [
        ("conversations", conversations), ("conversation", conversation), ("contacts", contacts), ("trust", trust),
        ("vault", vault), ("audit", audit),
    ]
}
