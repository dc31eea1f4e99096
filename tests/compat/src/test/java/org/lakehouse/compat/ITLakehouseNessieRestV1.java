package org.lakehouse.compat;

import org.junit.jupiter.api.extension.ExtendWith;
import org.projectnessie.client.ext.NessieApiVersion;
import org.projectnessie.client.ext.NessieApiVersions;
import org.projectnessie.jaxrs.tests.BaseTestNessieRest;

/**
 * The same conformance tests as {@link ITLakehouseNessieRest}, with Nessie's Java client on REST
 * API v1 ({@code /api/v1}): each test's v1 variant and the v1-only tests (the v2-only ones are
 * skipped by Nessie's test engine). A class of its own so that the Surefire reports tell the two
 * API versions apart.
 */
@ExtendWith(LakehouseClientResolver.class)
@NessieApiVersions(versions = NessieApiVersion.V1)
public class ITLakehouseNessieRestV1 extends BaseTestNessieRest {}
