// Sends known lines through winston-loki (Loki push, protobuf + snappy) and exits non-zero on
// any failure. Usage: node winston_loki.js http://127.0.0.1:PORT KEY
const winston = require('winston')
const LokiTransport = require('winston-loki')

const [host, key] = process.argv.slice(2)
const failures = []
const transport = new LokiTransport({
  host,
  basicAuth: `loki:${key}`,
  labels: { app: 'shop-node', instance: 'node-1' },
  json: false,
  batching: false,
  onConnectionError: (err) => failures.push(String(err))
})
if (transport.batcher.options.json) {
  console.error('snappy did not load: winston-loki fell back to JSON')
  process.exit(2)
}
const logger = winston.createLogger({ transports: [transport] })
logger.error('payment gateway timeout', { order: 'o-9' })
logger.warn('slow upstream')
transport.flush().then(async () => {
  await transport.close()
  if (failures.length) {
    console.error(failures.join('\n'))
    process.exit(1)
  }
  console.log(JSON.stringify({ service: 'shop-node', host: 'node-1', content_type: transport.batcher.contentType }))
  process.exit(0)
})
