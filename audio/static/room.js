/* The live room page: join, listen, speak when promoted, and show who is on stage.
 *
 * Standard APIs only (RTCPeerConnection, getUserMedia, fetch), for Chromium and Firefox.
 * The server does not renegotiate, so the one audio transceiver is sendrecv from the start:
 * a listener sends nothing on it, and promotion only puts the microphone on its sender
 * (RTCRtpSender.replaceTrack). The ticket token arrives in the URL fragment (never sent to
 * the server in a request line), moves to sessionStorage, and is removed from the URL.
 *
 * Served by an audio edge, the page joins the edge as a listener; anyone on stage (and a
 * listener promoted there, whom the edge then lets go) gets 409 naming the room's origin,
 * and the page posts the same offer to the origin and keeps its session's calls (/state,
 * /recording) there, cross-origin. Every (re)join starts here again.
 */
(function () {
  "use strict";

  var root = document.getElementById("room");
  if (!root) { return; }
  var spaceId = root.getAttribute("data-space-id");
  var base = "/rooms/" + spaceId;
  var roomBase = base;      // where our session is: here, or the room's origin after a 409
  var tokenKey = "stagepass:room:" + spaceId + ":token";

  var STATE_POLL_MS = 1000;
  var WAIT_POLL_MS = 5000;
  var GATHER_TIMEOUT_MS = 3000;
  var DISCONNECT_GRACE_MS = 4000;
  var ON_STAGE = { host: true, cohost: true, speaker: true };
  var ROLE_LABEL = { host: "Host", cohost: "Co-host", speaker: "Speaker", listener: "Listener" };

  var token = takeToken();
  var info = null;          // GET /info, with the local time it arrived
  var me = null;            // GET /me
  var pc = null;
  var sender = null;
  var mic = null;           // the microphone track while on stage
  var micMuted = false;     // the speaker's own mute (the track is disabled)
  var role = null;
  var handUp = false;
  var recording = false;
  var timers = { poll: 0, wait: 0, tick: 0, retry: 0, grace: 0 };
  var attempt = 0;
  var sawDisconnect = false;
  var generation = 0;       // bumps on every (re)join; stale callbacks check it

  var el = function (id) { return document.getElementById(id); };

  // --- token --------------------------------------------------------------------------

  function takeToken() {
    var fromUrl = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
    var stored = null;
    try {
      if (fromUrl) { sessionStorage.setItem(tokenKey, fromUrl); }
      stored = sessionStorage.getItem(tokenKey);
    } catch (e) { /* storage disabled: keep it in memory only */ }
    if (fromUrl) { history.replaceState(null, "", location.pathname + location.search); }
    return fromUrl || stored;
  }

  // --- HTTP ---------------------------------------------------------------------------

  function apiError(status, body, fallback) {
    var message = body && ((body.error && body.error.message) ||
                           (typeof body.detail === "string" && body.detail));
    var err = new Error(message || fallback);
    err.status = status;
    err.origin = body && body.error && typeof body.error.origin === "string" ?
                 body.error.origin : null;
    return err;
  }

  // `at`: the room's address to call (`base`, or the origin's after a 409); default here.
  async function api(method, path, body, at) {
    var headers = { "Authorization": "Bearer " + token };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    var response;
    try {
      response = await fetch((at || base) + path, {
        method: method, headers: headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (e) {
      throw apiError(0, null, "The server cannot be reached.");
    }
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) { throw apiError(response.status, data, response.statusText); }
    return data;
  }

  async function loadInfo() {
    var response = await fetch(base + "/info", { cache: "no-store" });
    if (!response.ok) { throw apiError(response.status, null, "The Space could not be loaded."); }
    var data = await response.json();
    data.receivedAt = performance.now();
    info = data;
    var badge = el("badge-status");
    badge.textContent = { live: "Live now", scheduled: "Scheduled", draft: "Draft",
                          ended: "Ended", cancelled: "Cancelled" }[data.status] || data.status;
    badge.setAttribute("data-status", data.status);
    el("host-name").textContent = data.host_name;
    return data;
  }

  // --- what the page shows ------------------------------------------------------------

  var STATES = ["loading", "waiting", "connecting", "live", "reconnecting", "replaced",
                "left", "ended", "denied"];

  function show(name) {
    STATES.forEach(function (state) { el("state-" + state).hidden = state !== name; });
    root.setAttribute("data-state", name);
  }

  // State changes are announced to screen readers only (the page shows the state itself);
  // feedback on what the person did (`tell`) is shown as well, and cleared on the next one.
  function announce(text) {
    say(el("announcer"), text);
  }

  function tell(text) {
    say(el("notice"), text);
  }

  function say(box, text) {
    // Clear first so the same text twice is still read out.
    box.textContent = "";
    window.setTimeout(function () { box.textContent = text; }, 50);
  }

  function stopTimers() {
    Object.keys(timers).forEach(function (name) {
      window.clearTimeout(timers[name]);
      window.clearInterval(timers[name]);
      timers[name] = 0;
    });
  }

  function deny(err) {
    teardown();
    el("denied-title").textContent = { 401: "Ticket not valid", 403: "You can't join this room" }[
      err.status] || "This browser can't join the room";
    el("denied-detail").textContent = err.message;
    show("denied");
    announce(el("denied-title").textContent + ". " + err.message);
  }

  // --- waiting for the start ----------------------------------------------------------

  var dateFormat = null;
  try {
    dateFormat = new Intl.DateTimeFormat(undefined, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short"
    });
  } catch (e) { dateFormat = null; }

  function serverNow() {
    return new Date(info.now).getTime() + (performance.now() - info.receivedAt);
  }

  function formatLeft(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d > 0) { return "in " + d + " d " + h + " h " + pad(m) + " min"; }
    if (h > 0) { return "in " + h + " h " + pad(m) + " min " + pad(sec) + " s"; }
    return "in " + m + " min " + pad(sec) + " s";
  }

  function showWaiting() {
    show("waiting");
    var starts = new Date(info.starts_at);
    if (dateFormat) {
      el("starts-local").textContent = dateFormat.format(starts);
      var zone = dateFormat.resolvedOptions().timeZone;
      el("starts-zone").textContent = zone ? "(your time, " + zone + ")" : "";
    }
    var tick = function () {
      var left = starts.getTime() - serverNow();
      el("countdown").textContent = left > 0 ? formatLeft(left) : "Starting any moment…";
    };
    tick();
    window.clearInterval(timers.tick);
    timers.tick = window.setInterval(tick, 1000);
    window.clearTimeout(timers.wait);
    timers.wait = window.setTimeout(checkStatus, WAIT_POLL_MS);
  }

  async function checkStatus() {
    try {
      await loadInfo();
    } catch (e) {
      timers.wait = window.setTimeout(checkStatus, WAIT_POLL_MS);
      return;
    }
    route();
  }

  function route() {
    if (info.status === "live") {
      window.clearInterval(timers.tick);
      join();
    } else if (info.status === "ended" || info.status === "cancelled") {
      showEnded();
    } else {
      showWaiting();
    }
  }

  // --- joining --------------------------------------------------------------------------

  function gathered(connection) {
    return new Promise(function (resolve) {
      if (connection.iceGatheringState === "complete") { resolve(); return; }
      var done = function () {
        if (connection.iceGatheringState === "complete") { finish(); }
      };
      var timer = window.setTimeout(finish, GATHER_TIMEOUT_MS);
      function finish() {
        window.clearTimeout(timer);
        connection.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
      connection.addEventListener("icegatheringstatechange", done);
    });
  }

  // The room page of an edge: the origin's address for this room, from a 409's `origin`.
  function originBase(origin) {
    var url;
    try { url = new URL(origin); } catch (e) { return null; }
    if (url.protocol !== "https:" && url.protocol !== "http:") { return null; }
    return url.origin + url.pathname.replace(/\/+$/, "") + "/rooms/" + spaceId;
  }

  async function offer(connection) {
    var body = { sdp: connection.localDescription.sdp, type: "offer", token: token };
    try {
      return await api("POST", "/offer", body, roomBase);
    } catch (err) {
      var there = err.status === 409 && err.origin ? originBase(err.origin) : null;
      if (!there || roomBase !== base) { throw err; }
      roomBase = there;     // the stage is mixed on the origin: the same offer, there
      return await api("POST", "/offer", body, roomBase);
    }
  }

  async function join() {
    var mine = ++generation;
    teardown(true);
    roomBase = base;
    show(attempt > 0 ? "reconnecting" : "connecting");
    try {
      me = await api("GET", "/me");
    } catch (err) {
      if (mine === generation) { await failed(err); }
      return;
    }
    if (mine !== generation) { return; }
    role = me.role;
    handUp = me.hand_raised;
    sawDisconnect = false;
    var connection = new RTCPeerConnection({ iceServers: me.ice_servers });
    pc = connection;
    sender = connection.addTransceiver("audio", { direction: "sendrecv" }).sender;
    connection.addEventListener("track", function (event) {
      var stream = event.streams && event.streams[0] ? event.streams[0]
                                                     : new MediaStream([event.track]);
      play(stream);
    });
    connection.addEventListener("connectionstatechange", function () {
      if (mine === generation) { onConnectionState(connection); }
    });
    try {
      await connection.setLocalDescription(await connection.createOffer());
      await gathered(connection);
      if (mine !== generation) { return; }
      var answer = await offer(connection);
      if (mine !== generation) { return; }
      await connection.setRemoteDescription(answer);
    } catch (err) {
      if (mine === generation) { await failed(err); }
      return;
    }
    watchTransport(connection, mine);
    renderControls();
    if (ON_STAGE[role]) { await micOn(); }
    pollState();
  }

  async function failed(err) {
    if (err.status === 401 || err.status === 422) { deny(err); return; }
    if (err.status === 403) {
      // Not live any more, or this ticket is refused: /info tells the two apart.
      try { await loadInfo(); } catch (e) { /* keep the refusal */ }
      if (info && info.status !== "live") { route(); return; }
      deny(err);
      return;
    }
    reconnect(err.message);
  }

  function play(stream) {
    var audio = el("room-audio");
    if (audio.srcObject !== stream) { audio.srcObject = stream; }
    var attemptPlay = audio.play();
    if (attemptPlay && attemptPlay.catch) {
      attemptPlay.catch(function () {
        // Autoplay refused until the person interacts with the page.
        var listen = el("btn-listen");
        listen.textContent = ON_STAGE[role] ? "Go on air" : "Start listening";
        listen.hidden = false;
        tell("Press " + listen.textContent + " to " +
             (ON_STAGE[role] ? "go on air." : "hear the room."));
      });
    }
  }

  function onConnectionState(connection) {
    var state = connection.connectionState;
    if (state === "connected") {
      attempt = 0;
      window.clearTimeout(timers.grace);
      show("live");
      if (!el("state-live").dataset.announced) {
        el("state-live").dataset.announced = "1";
        announce("You are in the room" + (ON_STAGE[role] ? " as " +
                 ROLE_LABEL[role].toLowerCase() + ". Your microphone is on." : "."));
      }
    } else if (state === "disconnected") {
      // ICE may come back by itself; give it a moment before starting over.
      sawDisconnect = true;
      window.clearTimeout(timers.grace);
      timers.grace = window.setTimeout(function () {
        if (pc === connection && connection.connectionState !== "connected") {
          reconnect("The connection dropped.");
        }
      }, DISCONNECT_GRACE_MS);
    } else if (state === "failed" || state === "closed") {
      lost(connection, !sawDisconnect);
    }
  }

  function watchTransport(connection, mine) {
    // The server ending our session (another tab took the ticket, a removal, the end) shows
    // at once as the DTLS transport closing (close_notify), while ICE only notices seconds
    // later. Browsers without RTCDtlsTransport fall back to the connection state.
    var dtls = sender && sender.transport;
    if (!dtls || !dtls.addEventListener) { return; }
    dtls.addEventListener("statechange", function () {
      if (mine !== generation) { return; }
      if (dtls.state === "closed") { lost(connection, true); }
      if (dtls.state === "failed") { lost(connection, false); }
    });
  }

  // `abrupt`: the server closed the session (rather than the network losing it). If a session
  // of ours is then in the room, another tab or device took over: say so, and do not take it
  // back (two tabs would otherwise keep kicking each other out).
  async function lost(connection, abrupt) {
    if (pc !== connection) { return; }
    teardown(true);
    show("reconnecting");
    try {
      await loadInfo();
      if (info.status !== "live") { route(); return; }
      var state = await api("GET", "/state", undefined, roomBase);
      if (abrupt && state.you) {
        show("replaced");
        announce("Your ticket is now in use somewhere else.");
        return;
      }
    } catch (err) {
      if (err.status === 401 || err.status === 403) { await failed(err); return; }
    }
    reconnect("The connection dropped.");
  }

  function reconnect(reason) {
    teardown(true);
    show("reconnecting");
    attempt += 1;
    var delay = Math.min(15000, 1000 * Math.pow(2, attempt - 1)) * (0.75 + Math.random() / 2);
    el("reconnect-detail").textContent =
      reason + " Trying again in " + Math.ceil(delay / 1000) + " s.";
    if (attempt === 1) { announce("Connection lost. Reconnecting."); }
    window.clearTimeout(timers.retry);
    timers.retry = window.setTimeout(join, delay);
  }

  function teardown(keepPage) {
    stopTimers();
    if (pc) {
      var old = pc;
      pc = null;
      sender = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
    micOff();
    if (!keepPage) {
      generation += 1;
      el("notice").textContent = "";
    }
    el("state-live").dataset.announced = "";
  }

  // --- the stage ------------------------------------------------------------------------

  function pollState() {
    var mine = generation;
    var poll = async function () {
      if (mine !== generation || !pc) { return; }
      try {
        var state = await api("GET", "/state", undefined, roomBase);
        if (mine !== generation) { return; }
        render(state);
        if (me && me.runs_stage) { renderStage(await api("GET", "/stage")); }
      } catch (err) {
        if (mine !== generation) { return; }
        if (err.status === 401 || err.status === 403) { await failed(err); return; }
      }
      if (mine === generation) { timers.poll = window.setTimeout(poll, STATE_POLL_MS); }
    };
    poll();
  }

  function stageItem(p) {
    var item = document.createElement("li");
    if (p.speaking) { item.className = "speaking"; }
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = p.display_name;
    var roleLine = document.createElement("span");
    roleLine.className = "role";
    roleLine.textContent = ROLE_LABEL[p.role] || p.role;
    if (p.via === "discord") {
      // in the room through the bridged Discord Stage or voice channel
      var via = document.createElement("span");
      via.className = "via via-discord";
      via.textContent = "Discord";
      via.title = "Joined from Discord";
      roleLine.append(" ", via);
    }
    var flags = document.createElement("span");
    flags.className = "flags";
    if (p.muted) {
      flags.textContent = "Muted";
    } else if (p.speaking) {
      flags.className = "flags talking";
      flags.textContent = "Talking";
    }
    var meter = document.createElement("span");
    meter.className = "level";
    meter.setAttribute("aria-hidden", "true");
    meter.appendChild(document.createElement("span"));
    item.append(name, roleLine, flags, meter);
    return item;
  }

  function levelWidth(level) {
    if (!(level > 0)) { return 0; }
    var db = 20 * Math.log10(level);
    return Math.max(0, Math.min(1, (db + 50) / 44));
  }

  // The stage list is rebuilt only when who is on it (or their role, mute, talking) changes,
  // so a screen reader user moving through it is not thrown back every second; the level
  // bars are updated in place.
  var stageShape = null;

  function render(state) {
    var list = el("stage");
    var shape = JSON.stringify(state.participants.map(function (p) {
      return [p.display_name, p.role, p.muted, p.speaking, p.via];
    }));
    if (shape !== stageShape) {
      stageShape = shape;
      list.textContent = "";
      state.participants.forEach(function (p) { list.appendChild(stageItem(p)); });
      if (!state.participants.length) {
        var empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "Nobody on stage yet.";
        list.appendChild(empty);
      }
    }
    var bars = list.querySelectorAll(".level span");
    state.participants.forEach(function (p, index) {
      if (bars[index]) {
        bars[index].style.width = Math.round(levelWidth(p.muted ? 0 : p.level) * 100) + "%";
      }
    });
    el("listener-count").textContent = String(state.listener_count);

    if (state.recording !== recording) {
      recording = state.recording;
      el("badge-recording").hidden = !recording;
      announce(recording ? "This Space is being recorded." : "Recording stopped.");
    }
    if (state.you) { onRole(state.you.role, state.you.muted); }
    renderControls();
  }

  async function onRole(next, mutedByModerator) {
    var before = role;
    role = next;
    if (me) { me.muted = mutedByModerator; }
    if (before === next) { return; }
    if (ON_STAGE[next] && !ON_STAGE[before]) {
      handUp = false;
      tell("You are now a speaker. Turning your microphone on.");
      await micOn();
    } else if (!ON_STAGE[next] && ON_STAGE[before]) {
      await micOff();
      tell("You are a listener again. Your microphone is off.");
    }
    renderControls();
  }

  function renderControls() {
    var onStage = !!ON_STAGE[role];
    var hand = el("btn-hand");
    hand.hidden = onStage;
    hand.setAttribute("aria-pressed", handUp ? "true" : "false");
    hand.textContent = handUp ? "Lower hand" : "Raise hand";

    var micButton = el("btn-mic");
    micButton.hidden = !onStage;
    if (!mic) {
      micButton.textContent = role === "host" || role === "cohost" ? "Go on air"
                                                                     : "Turn on my microphone";
      micButton.setAttribute("aria-pressed", "false");
    } else {
      micButton.textContent = micMuted ? "Unmute my microphone" : "Mute my microphone";
      micButton.setAttribute("aria-pressed", micMuted ? "true" : "false");
    }

    var record = el("btn-record");
    record.hidden = !(me && me.can_record);
    record.setAttribute("aria-pressed", recording ? "true" : "false");
    record.textContent = recording ? "Stop recording" : "Start recording";

    el("stage-controls").hidden = !(me && me.runs_stage);

    var line = el("you-line");
    var label = ROLE_LABEL[role] || "Listener";
    var extra = me && me.muted && onStage ? " · muted by a moderator" : "";
    line.textContent = me ? "You: " + me.display_name + " · " + label + extra : "";
  }

  // --- stage controls (host, co-hosts, moderators) -------------------------------------------

  var peopleShape = null;
  var endArmed = 0;         // the End button asks again before it ends the Space

  function personItem(p, actions) {
    var item = document.createElement("li");
    item.setAttribute("data-key", p.key);
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = p.display_name;
    item.appendChild(name);
    if (p.muted) {
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "Muted";
      item.appendChild(tag);
    }
    actions.forEach(function (pair) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = pair[2] || "";
      button.textContent = pair[1];
      button.setAttribute("data-action", pair[0]);
      button.setAttribute("aria-label", pair[1] + " " + p.display_name);
      button.addEventListener("click", function () {
        busy(button, async function () {
          var result = await api("POST", "/stage", { action: pair[0], who: p.key });
          renderStage(result);
          tell(DONE[pair[0]].replace("{name}", p.display_name));
        });
      });
      item.appendChild(button);
    });
    return item;
  }

  var DONE = {
    promote: "{name} is now a speaker.", dismiss: "{name}'s hand is lowered.",
    mute: "{name} is muted.", unmute: "{name} is unmuted.",
    remove: "{name} was removed from the Space."
  };

  function fill(list, people, empty, actions) {
    list.textContent = "";
    people.forEach(function (p) { list.appendChild(personItem(p, actions(p))); });
    if (!people.length) {
      var none = document.createElement("li");
      none.className = "empty";
      none.textContent = empty;
      list.appendChild(none);
    }
  }

  function renderStage(stage) {
    var shape = JSON.stringify([stage.hands, stage.speakers]);
    if (shape === peopleShape) { return; }
    var before = peopleShape === null ? [] : JSON.parse(peopleShape)[0];
    peopleShape = shape;
    el("hand-count").textContent = String(stage.hands.length);
    fill(el("hand-queue"), stage.hands, "No hands raised.", function () {
      return [["promote", "Promote", "primary"], ["dismiss", "Dismiss"]];
    });
    fill(el("speaker-list"), stage.speakers, "No speakers besides the hosts.", function (p) {
      return [p.muted ? ["unmute", "Unmute"] : ["mute", "Mute"], ["remove", "Remove", "danger"]];
    });
    var known = {};
    before.forEach(function (p) { known[p.key] = true; });
    var raised = stage.hands.filter(function (p) { return !known[p.key]; });
    if (raised.length) {
      announce(raised.map(function (p) { return p.display_name; }).join(", ") +
               " raised " + (raised.length > 1 ? "their hands." : "a hand."));
    }
  }

  el("btn-end").addEventListener("click", function (event) {
    var button = event.currentTarget;
    if (!endArmed) {
      button.textContent = "Press again to end the Space for everyone";
      endArmed = window.setTimeout(function () {
        endArmed = 0;
        button.textContent = "End the Space";
      }, 5000);
      return;
    }
    window.clearTimeout(endArmed);
    endArmed = 0;
    busy(button, async function () {
      await api("POST", "/end", { confirm: true });
      button.textContent = "End the Space";
      await loadInfo();
      route();
    });
  });

  // --- microphone -------------------------------------------------------------------------

  async function micOn() {
    if (mic || !sender) { return; }
    var stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false
      });
    } catch (err) {
      tell("Your microphone could not be turned on (" + (err.name || err.message) +
               "). Allow microphone access for this site, then press Turn on my microphone.");
      renderControls();
      return;
    }
    if (!sender || !ON_STAGE[role]) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      return;
    }
    mic = stream.getAudioTracks()[0];
    micMuted = false;
    await sender.replaceTrack(mic);
    renderControls();
  }

  async function micOff() {
    if (!mic) { return; }
    var track = mic;
    mic = null;
    micMuted = false;
    if (sender) {
      try { await sender.replaceTrack(null); } catch (e) { /* the connection is gone */ }
    }
    track.stop();
  }

  // --- buttons ----------------------------------------------------------------------------

  async function busy(button, work) {
    button.disabled = true;
    try { await work(); } catch (err) { tell(err.message); }
    finally { button.disabled = false; }
  }

  el("btn-listen").addEventListener("click", function () {
    var audio = el("room-audio");
    audio.play().then(async function () {
      el("btn-listen").hidden = true;
      if (ON_STAGE[role]) { await micOn(); }
      tell(ON_STAGE[role] ? "You are on air." : "Listening.");
    }).catch(function (err) { tell("The audio could not start: " + err.message); });
  });

  el("btn-hand").addEventListener("click", function (event) {
    busy(event.currentTarget, async function () {
      var result = await api("POST", "/hand", { up: !handUp });
      handUp = result.up;
      renderControls();
      tell(handUp ? "Your hand is raised. A moderator can invite you to speak."
                      : "Your hand is lowered.");
    });
  });

  el("btn-mic").addEventListener("click", function (event) {
    busy(event.currentTarget, async function () {
      if (!mic) { await micOn(); return; }
      micMuted = !micMuted;
      mic.enabled = !micMuted;
      renderControls();
      tell(micMuted ? "Your microphone is muted." : "Your microphone is on.");
    });
  });

  el("btn-record").addEventListener("click", function (event) {
    busy(event.currentTarget, async function () {
      var result = await api("POST", "/recording", { on: !recording }, roomBase);
      recording = result.recording;
      el("badge-recording").hidden = !recording;
      renderControls();
      tell(recording ? "Recording started." : "Recording stopped.");
    });
  });

  el("btn-leave").addEventListener("click", function () {
    teardown();
    show("left");
    announce("You left the room.");
    el("btn-rejoin").focus();
  });

  el("btn-rejoin").addEventListener("click", function () { attempt = 0; start(); });
  el("btn-here").addEventListener("click", function () { attempt = 0; join(); });

  window.addEventListener("pagehide", function () { teardown(); });

  // --- after the end: replay ----------------------------------------------------------------

  async function showEnded() {
    teardown();
    var cancelled = info.status === "cancelled";
    el("ended-title").textContent = cancelled ? "This Space was cancelled" : "This Space has ended";
    el("ended-detail").textContent = cancelled ? "It did not take place." : "Thanks for listening.";
    el("badge-recording").hidden = true;
    show("ended");
    announce(el("ended-title").textContent + ".");
    if (cancelled) { return; }
    var listing;
    try {
      listing = await api("GET", "/recordings");
    } catch (err) {
      return;  // no ticket, or nothing to replay: the ended state says enough
    }
    if (!listing.parts.length) { return; }
    var list = el("recording-list");
    list.textContent = "";
    listing.parts.forEach(function (part) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      var size = (part.size / 1048576).toFixed(1) + " MB";
      button.textContent = "Play recording" + (listing.parts.length > 1 ? " part " + part.number : "") +
                           " (" + size + ")";
      button.addEventListener("click", function () {
        busy(button, async function () {
          var response = await fetch(part.url, {
            headers: { "Authorization": "Bearer " + token }, cache: "no-store"
          });
          if (!response.ok) { throw new Error("The recording could not be loaded."); }
          var audio = document.createElement("audio");
          audio.controls = true;
          audio.src = URL.createObjectURL(await response.blob());
          audio.setAttribute("aria-label", button.textContent.replace(/^Play /, ""));
          item.replaceChild(audio, button);
          audio.focus();
          audio.play().catch(function () { /* the controls are there */ });
        });
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    el("recordings").hidden = false;
  }

  // --- start ------------------------------------------------------------------------------

  async function start() {
    show("loading");
    if (!token) {
      deny({ status: 401, message: "This page needs the link from your ticket message." });
      return;
    }
    if (!window.RTCPeerConnection) {
      deny({ status: 0, message: "This browser cannot play live audio (no WebRTC)." });
      return;
    }
    try {
      await loadInfo();
    } catch (err) {
      show("reconnecting");
      el("reconnect-detail").textContent = err.message;
      timers.retry = window.setTimeout(start, WAIT_POLL_MS);
      return;
    }
    route();
  }

  start();
})();
