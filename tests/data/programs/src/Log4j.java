import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/** log4j 2 with a PatternLayout (`%d [%t] %-5level %c - %m%n`); configured by log4j2.properties. */
public class Log4j {
    static final Logger LOG = LogManager.getLogger("shop.Inventory");

    public static void main(String[] args) throws Exception {
        LOG.info("inventory sync started");
        LOG.debug("fetched 120 items");
        try {
            Object o = null;
            o.toString();
        } catch (NullPointerException e) {
            LOG.error("sync failed for warehouse 7", e);
        }
        LOG.warn("retrying in 5s");
        LOG.info("inventory sync finished");
    }
}
