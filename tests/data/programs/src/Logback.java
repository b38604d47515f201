import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** logback through slf4j with a Spring-Boot-like pattern; configured by logback.xml. */
public class Logback {
    static final Logger LOG = LoggerFactory.getLogger("shop.Orders");

    static void place(int n) {
        if (n > 2) {
            throw new IllegalArgumentException("too many items: " + n);
        }
    }

    public static void main(String[] args) throws Exception {
        LOG.info("orders service up");
        try {
            place(3);
        } catch (RuntimeException e) {
            LOG.error("order 42 rejected", new RuntimeException("validation", e));
        }
        LOG.warn("queue depth 900");
        LOG.info("orders service down");
    }
}
