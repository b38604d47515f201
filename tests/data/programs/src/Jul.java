import java.util.logging.*;

/** java.util.logging with its default SimpleFormatter (two lines a record, 12-hour clock) on
 *  stderr; the truth (time, level, message) goes to args[0] through a second handler. */
public class Jul {
    static final Logger LOG = Logger.getLogger("shop.Checkout");

    static void charge() {
        try {
            Integer.parseInt("12x");
        } catch (NumberFormatException e) {
            throw new IllegalStateException("gateway answered nonsense", e);
        }
    }

    public static void main(String[] args) throws Exception {
        Handler truth = new FileHandler(args[0]);
        truth.setFormatter(new Formatter() {
            public String format(LogRecord r) {
                return "{\"ts_ms\":" + r.getMillis() + ",\"level\":\"" + r.getLevel()
                    + "\",\"text\":\"" + r.getMessage() + "\"}\n";
            }
        });
        LOG.addHandler(truth);
        LOG.info("checkout service starting");
        LOG.warning("cache hit rate below 40%");
        try {
            charge();
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "request failed", e);
        }
        LOG.config("not shown: CONFIG is below the console's INFO");
        LOG.info("giving up");
        truth.close();
        throw new IllegalStateException("unrecoverable: shutting down");
    }
}
