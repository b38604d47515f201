// Sends known log records through the OpenTelemetry JS SDK and its OTLP/HTTP protobuf exporter;
// exits non-zero when the exporter reports a failure.
// Usage: node otel_js.js http://127.0.0.1:PORT KEY
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs')
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto')
const { resourceFromAttributes } = require('@opentelemetry/resources')

const [host, key] = process.argv.slice(2)
const exporter = new OTLPLogExporter({ url: `${host}/v1/logs`, headers: { authorization: `Bearer ${key}` } })
const results = []
const realExport = exporter.export.bind(exporter)
exporter.export = (logs, done) => realExport(logs, (r) => { results.push(r.code); done(r) })
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'shop-js', 'host.name': 'js-1' }),
  processors: [new SimpleLogRecordProcessor({ exporter })]
})
const logger = provider.getLogger('shop.js', '1.2.3')
const ts = new Date('2024-01-15T10:30:45.123Z')
logger.emit({ timestamp: ts, severityNumber: 17, severityText: 'ERROR', body: 'js card declined', attributes: { 'order.id': 'o-3', amount: 9.5 } })
logger.emit({ timestamp: ts, severityNumber: 13, body: { kind: 'structured', n: 2 } })
provider.forceFlush().then(() => provider.shutdown()).then(() => {
  if (results.length !== 2 || results.some((c) => c !== 0)) {
    console.error(`exporter results: ${JSON.stringify(results)}`)
    process.exit(1)
  }
  console.log(JSON.stringify({ service: 'shop-js', results }))
})
