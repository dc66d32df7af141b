// Live updates: a WebSocket to the uvicorn tier pushes every new message,
// whichever container stored it. Reconnects after a container goes away.
(function () {
  "use strict";
  var list = document.getElementById("messages");
  var status = document.getElementById("live-status");
  var delay = 500;
  var lastId = 0;
  list.querySelectorAll("li[data-id]").forEach(function (li) {
    lastId = Math.max(lastId, Number(li.dataset.id));
  });

  function show(message) {
    lastId = Math.max(lastId, message.id);
    if (list.querySelector('li[data-id="' + message.id + '"]')) return;
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.dataset.id = message.id;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    var meta = document.createElement("small");
    meta.textContent = "#" + message.id + " via " + message.served_by;
    item.append(text, meta);
    list.prepend(item);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/messages");
    socket.onopen = function () {
      status.textContent = "connected";
      delay = 500;
      // After a reconnect, ask for whatever was written while we were away.
      socket.send(JSON.stringify({ type: "resume", after: lastId }));
    };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "message") show(data.message);
    };
    socket.onclose = function () {
      status.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 8000);
    };
  }
  connect();
})();
