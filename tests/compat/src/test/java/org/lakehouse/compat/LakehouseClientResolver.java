package org.lakehouse.compat;

import java.net.URI;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.projectnessie.client.ext.NessieClientResolver;

/**
 * Points Nessie's test extension at a running {@code lakehouse serve}: the API root comes from
 * the system property {@code lakehouse.nessie.uri} (else the environment variable
 * {@code LAKEHOUSE_NESSIE_COMPAT_URI}), the server's root, e.g. {@code http://127.0.0.1:19120/};
 * the extension appends {@code api/v1} or {@code api/v2}, per the test's API version.
 */
public class LakehouseClientResolver extends NessieClientResolver {

  static URI baseUri() {
    String uri = System.getProperty("lakehouse.nessie.uri");
    if (uri == null || uri.isEmpty()) {
      uri = System.getenv("LAKEHOUSE_NESSIE_COMPAT_URI");
    }
    if (uri == null || uri.isEmpty()) {
      throw new IllegalStateException(
          "set -Dlakehouse.nessie.uri=http://HOST:PORT/ (the server's root)");
    }
    return URI.create(uri.endsWith("/") ? uri : uri + "/");
  }

  @Override
  protected URI getBaseUri(ExtensionContext extensionContext) {
    return baseUri();
  }
}
