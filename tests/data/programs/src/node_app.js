// A Node service that logs ISO-stamped lines, then dies of an uncaught error: Node prints the
// source excerpt and a caret before `Error:`, the stack, and its version. Truth to argv[2].
const fs = require('fs');
const truth = [];
function log(level, msg) {
  const d = new Date();
  truth.push({ ts: d.toISOString(), level, contains: [msg] });
  console.log(`${d.toISOString()} ${level} ${msg}`);
}
log('INFO', 'listening on :8080');
log('WARN', 'slow request GET /cart 1200ms');
log('ERROR', 'payment provider unreachable');
truth[truth.length - 1].contains.push('Error: card declined', 'Node.js v');
fs.writeFileSync(process.argv[2], JSON.stringify(truth));
function charge() { throw new Error('card declined'); }
charge();
