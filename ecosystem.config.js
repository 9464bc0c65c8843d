// PM2 supervises every long-running process of the suite: `./scripts/start.sh` (or
// `npx pm2 start ecosystem.config.js`), `npx pm2 status`, `npx pm2 logs <name>`, `./scripts/stop.sh`.
//
// Configuration reaches the processes through the environment: PM2 hands each app the environment of
// the `pm2 start` command, and the Python side also reads `.env` (never overriding). So
// `VAULT_PATH=/tmp/v npx pm2 start ecosystem.config.js` runs the whole suite against another vault,
// which is how tests/test_pm2.py runs it. AI_EMPLOYEE_LOG_DIR moves the log files (default ./logs).
//
// To add a process, add one line to APPS: [pm2 name, arguments to the venv's python].
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = __dirname;
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const LOG_DIR = path.resolve(ROOT, process.env.AI_EMPLOYEE_LOG_DIR || 'logs');

const APPS = [
  ['watcher-files', ['-m', 'watchers.filesystem_watcher']],
  ['reasoning-loop', ['reasoning_loop.py']],
  ['agent-interface', ['agent_interface.py', 'run']],
  ['mcp-email', ['-m', 'mcp_servers.email_server']],
  ['mcp-browser', ['-m', 'mcp_servers.browser_server']],
  ['mcp-odoo', ['-m', 'odoo_integration.mcp_server']],
  ['mcp-twitter', ['-m', 'social_media_integration.twitter_mcp_server']],
  ['mcp-meta', ['-m', 'social_media_integration.facebook_instagram_mcp_server']],
  ['watcher-gmail', ['-m', 'watchers.gmail_watcher']],
  ['watcher-whatsapp', ['-m', 'watchers.whatsapp_watcher']],
  ['scheduler', ['scheduler.py']],
];

function app(name, args) {
  return {
    name,
    // The venv's python is the program itself (not a PM2 "interpreter" for a script) so that
    // `python -m package.module` entry points work the same way as plain scripts.
    script: PYTHON,
    args,
    interpreter: 'none',
    exec_mode: 'fork',
    cwd: ROOT,
    env: { PYTHONUNBUFFERED: '1' },
    autorestart: true,
    // First restart after 1 s, then 1.5x longer each time up to 15 s; PM2 resets the delay once the
    // process has stayed up for 30 s. (This supersedes restart_delay, so that is not set.)
    exp_backoff_restart_delay: 1000,
    // A process that dies within min_uptime of starting, max_restarts times in a row, is left
    // "errored" instead of crash-looping; `npx pm2 logs <name>` says why.
    min_uptime: 5000,
    max_restarts: 10,
    // Stop = SIGTERM, then up to 10 s to finish or safely abandon in-flight work, then SIGKILL.
    kill_signal: 'SIGTERM',
    kill_timeout: 10000,
    merge_logs: true,
    out_file: path.join(LOG_DIR, `${name}.out.log`),
    error_file: path.join(LOG_DIR, `${name}.err.log`),
    log_date_format: 'YYYY-MM-DD HH:mm:ss.SSS Z',
    watch: false,
  };
}

fs.mkdirSync(LOG_DIR, { recursive: true });

module.exports = { apps: APPS.map(([name, args]) => app(name, args)) };
