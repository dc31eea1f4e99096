-- silver.nation: the 25 nations, typed (TPC-H types), strings trimmed (empty is NULL), one
-- row per primary key (n_nationkey): the most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(n_nationkey AS INTEGER) AS n_nationkey,
    NULLIF(TRIM(n_name), '') AS n_name,
    CAST(n_regionkey AS INTEGER) AS n_regionkey,
    NULLIF(TRIM(n_comment), '') AS n_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY n_nationkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.nation
) AS latest
WHERE _version = 1
