-- silver.region: the five regions, typed (TPC-H types), strings trimmed (empty is NULL),
-- one row per primary key (r_regionkey): the most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(r_regionkey AS INTEGER) AS r_regionkey,
    NULLIF(TRIM(r_name), '') AS r_name,
    NULLIF(TRIM(r_comment), '') AS r_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY r_regionkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.region
) AS latest
WHERE _version = 1
