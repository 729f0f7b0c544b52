// live demo page: send the camera over WebRTC, show the avatar that comes back, stats and controls.
"use strict";
const $ = (id) => document.getElementById(id);
let pc = null, channel = null, statsTimer = null, lastInbound = null, serverStats = null;
window.liveStats = { framesReceived: 0, serverFramesDone: 0, latencyMs: null, connected: false };

function send(values) {
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(values));
}

async function start() {
  $("start").disabled = true;
  $("error").textContent = "";
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $("local").srcObject = stream;
    pc = new RTCPeerConnection();  // no STUN: LAN and loopback need none
    stream.getVideoTracks().forEach((t) => pc.addTrack(t, stream));
    pc.addEventListener("track", (ev) => { $("avatar").srcObject = new MediaStream([ev.track]); });
    pc.addEventListener("connectionstatechange", () => {
      $("status").textContent = "connection: " + pc.connectionState;
      window.liveStats.connected = pc.connectionState === "connected";
    });
    channel = pc.createDataChannel("control");
    channel.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "stats") serverStats = msg;
      else if (msg.type === "error") $("error").textContent = msg.error;
    };
    channel.onopen = () => { $("controls").disabled = false; };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {  // send one complete offer (all candidates), as aiortc expects
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    });
    const resp = await fetch("/offer", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }) });
    const answer = await resp.json();
    if (!resp.ok) throw new Error(answer.error || resp.statusText);
    await pc.setRemoteDescription(answer);
    statsTimer = setInterval(updateStats, 1000);
    $("stop").disabled = false;
  } catch (err) {
    $("error").textContent = String(err.message || err);
    stop();
  }
}

async function updateStats() {
  if (!pc) return;
  const report = await pc.getStats();
  let inbound = null, rttMs = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rttMs = s.currentRoundTripTime * 1000;
  });
  if (inbound) {
    if (lastInbound) {
      const dt = (inbound.timestamp - lastInbound.timestamp) / 1000;
      $("fps").textContent = ((inbound.framesDecoded - lastInbound.framesDecoded) / dt).toFixed(1);
    }
    lastInbound = inbound;
    window.liveStats.framesReceived = inbound.framesDecoded || 0;
  }
  if (serverStats) {
    const jb = inbound && inbound.jitterBufferEmittedCount ? 1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount : 0;
    const dec = inbound && inbound.framesDecoded ? 1000 * inbound.totalDecodeTime / inbound.framesDecoded : 0;
    // camera -> server (about half the round trip) + server processing + back (half) + jitter buffer + decode
    const est = serverStats.server_latency_ms_p50 + (rttMs || 0) + jb + dec;
    window.liveStats.latencyMs = est;
    window.liveStats.serverFramesDone = serverStats.frames_done;
    $("latency").textContent = est.toFixed(0) + " ms";
    $("server").textContent = serverStats.server_latency_ms_p50 + " / " + serverStats.server_latency_ms_p95 + " ms";
    $("dropped").textContent = serverStats.dropped;
    $("done").textContent = serverStats.frames_done;
    if (serverStats.error) $("error").textContent = serverStats.error;
    if (serverStats.identity && document.activeElement !== $("identity")) $("identity").value = serverStats.identity;
    if (serverStats.frame && document.activeElement !== $("frame")) $("frame").value = serverStats.frame;
  }
}

function stop() {
  clearInterval(statsTimer);
  if (pc) { pc.getSenders().forEach((s) => s.track && s.track.stop()); pc.close(); }
  pc = null; channel = null; lastInbound = null;
  $("start").disabled = false; $("stop").disabled = true; $("controls").disabled = true;
  window.liveStats.connected = false;
}

for (const id of ["expression_gain", "pose_gain", "emotion", "warp_strength"]) {
  $(id).addEventListener("input", (ev) => {
    ev.target.nextElementSibling.textContent = ev.target.value;
    send({ [id]: parseFloat(ev.target.value) });
  });
}
$("freeze").addEventListener("change", (ev) => send({ freeze: ev.target.checked }));
$("recentre").addEventListener("click", () => send({ recentre: true }));
$("identity").addEventListener("change", (ev) => send({ identity: ev.target.value }));
$("frame").addEventListener("change", (ev) => send({ frame: ev.target.value }));

async function listIdentities() {  // the names the operator offers; the server shows the first at start
  const resp = await fetch("/stats");
  const stats = await resp.json();
  for (const name of stats.identities) $("identity").add(new Option(name, name, false, name === stats.identity));
  for (const size of stats.frames) $("frame").add(new Option(size, size, false, size === stats.frame));
  $("frame").disabled = stats.frames.length === 0;  // served with --frame avatar: the square, nothing to choose
}
listIdentities().catch((err) => { $("error").textContent = "could not list identities: " + err; });
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
