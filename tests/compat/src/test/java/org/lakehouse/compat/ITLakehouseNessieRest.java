package org.lakehouse.compat;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.extension.ExtendWith;
import org.projectnessie.client.ext.NessieApiVersion;
import org.projectnessie.client.ext.NessieApiVersions;
import org.projectnessie.jaxrs.tests.AbstractRelativeReferences;
import org.projectnessie.jaxrs.tests.BaseTestNessieRest;

/**
 * Nessie's REST API v2 conformance tests ({@code BaseTestNessieApi} through {@code
 * BaseTestNessieRest}, and the relative-reference tests) against {@code lakehouse serve}, on API
 * v2; {@link ITLakehouseNessieRestV1} runs them on API v1.
 */
@ExtendWith(LakehouseClientResolver.class)
@NessieApiVersions(versions = NessieApiVersion.V2)
public class ITLakehouseNessieRest extends BaseTestNessieRest {

  @Nested
  @NessieApiVersions(versions = NessieApiVersion.V2)
  public class RelativeReferences extends AbstractRelativeReferences {
    protected RelativeReferences() {
      super(ITLakehouseNessieRest.this);
    }
  }
}
