#!/bin/sh
# Image build step (docker/lakehouse/Dockerfile, docker/airflow/Dockerfile): the Spark
# runtime jars the lakehouse's Spark engine loads (LAKEHOUSE_SPARK__JARS_DIR), from Maven
# Central, each checked against the repository's SHA-1.
#   fetch-jars.sh DEST ICEBERG_VERSION NESSIE_VERSION [MAVEN_REPO]
set -eu
dest="$1" iceberg="$2" nessie="$3" repo="${4:-https://repo.maven.apache.org/maven2}"
mkdir -p "$dest"
cd "$dest"
for path in \
    "org/apache/iceberg/iceberg-spark-runtime-3.5_2.12/$iceberg/iceberg-spark-runtime-3.5_2.12-$iceberg.jar" \
    "org/apache/iceberg/iceberg-aws-bundle/$iceberg/iceberg-aws-bundle-$iceberg.jar" \
    "org/projectnessie/nessie-integrations/nessie-spark-extensions-3.5_2.12/$nessie/nessie-spark-extensions-3.5_2.12-$nessie.jar"; do
    name="${path##*/}"
    curl -fsSL --retry 3 -o "$name" "$repo/$path"
    echo "$(curl -fsSL --retry 3 "$repo/$path.sha1" | cut -c1-40)  $name" | sha1sum -c -
done
