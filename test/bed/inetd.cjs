#!/usr/bin/env node
// A test host's sshd in the host's network namespace, as on a real GPU host, where sshd and dockerd
// share one: each connection to 127.0.0.1:PORT (this machine) gets `sshd -i` inside the netns of
// the dockerd named by PIDFILE (its own `unshare --net`), so it reaches container addresses.
// With no live dockerd (stopped, or a bed without Docker) sshd runs here instead.
// Usage: inetd.cjs PORT PIDFILE SSHD_ARGV...
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const { spawn } = require('node:child_process');

const [port, pidFile, ...sshd] = process.argv.slice(2);

function dockerdPid() {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

const server = net.createServer({ pauseOnConnect: true }, (sock) => {
  const pid = dockerdPid();
  const [cmd, ...args] = pid === null ? sshd : ['/usr/bin/nsenter', `--net=/proc/${pid}/ns/net`, ...sshd];
  // The socket itself is sshd's stdin and stdout: no bytes pass through this process.
  const child = spawn(cmd, args, { stdio: [sock, sock, 'inherit'] });
  child.once('spawn', () => sock.destroy());
  child.once('error', (err) => {
    process.stderr.write(`inetd: ${err.message}\n`);
    sock.destroy();
  });
});
server.on('error', (err) => {
  process.stderr.write(err.code === 'EADDRINUSE' ? `Address already in use: ${port}\n` : `inetd: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(port), '127.0.0.1', 128, () => process.stderr.write(`Server listening on 127.0.0.1 port ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
