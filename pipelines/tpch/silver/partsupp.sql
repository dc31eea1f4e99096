-- silver.partsupp: which supplier sells which part at what cost, typed (TPC-H types),
-- strings trimmed (empty is NULL), one row per primary key (ps_partkey, ps_suppkey): the
-- most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(ps_partkey AS INTEGER) AS ps_partkey,
    CAST(ps_suppkey AS INTEGER) AS ps_suppkey,
    CAST(ps_availqty AS INTEGER) AS ps_availqty,
    CAST(ps_supplycost AS DECIMAL(15,2)) AS ps_supplycost,
    NULLIF(TRIM(ps_comment), '') AS ps_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY ps_partkey, ps_suppkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.partsupp
) AS latest
WHERE _version = 1
