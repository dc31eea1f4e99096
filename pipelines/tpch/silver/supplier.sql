-- silver.supplier: suppliers, typed (TPC-H types), strings trimmed (empty is NULL), one row
-- per primary key (s_suppkey): the most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(s_suppkey AS INTEGER) AS s_suppkey,
    NULLIF(TRIM(s_name), '') AS s_name,
    NULLIF(TRIM(s_address), '') AS s_address,
    CAST(s_nationkey AS INTEGER) AS s_nationkey,
    NULLIF(TRIM(s_phone), '') AS s_phone,
    CAST(s_acctbal AS DECIMAL(15,2)) AS s_acctbal,
    NULLIF(TRIM(s_comment), '') AS s_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY s_suppkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.supplier
) AS latest
WHERE _version = 1
