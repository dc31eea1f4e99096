-- silver.orders: orders, typed (TPC-H types), strings trimmed (empty is NULL), one row per
-- primary key (o_orderkey): the most recently ingested version wins.
-- A change feed: _op is I (insert; every row of the first load), U (update) or D (delete).
-- Incremental (pipeline.yaml): a run reads only the bronze rows ingested since the last
-- one and merges them on the key: keys whose latest version is a delete are removed from
-- the table, the others inserted or updated.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(o_orderkey AS BIGINT) AS o_orderkey,
    CAST(o_custkey AS INTEGER) AS o_custkey,
    NULLIF(TRIM(o_orderstatus), '') AS o_orderstatus,
    CAST(o_totalprice AS DECIMAL(15,2)) AS o_totalprice,
    CAST(o_orderdate AS DATE) AS o_orderdate,
    NULLIF(TRIM(o_orderpriority), '') AS o_orderpriority,
    NULLIF(TRIM(o_clerk), '') AS o_clerk,
    CAST(o_shippriority AS INTEGER) AS o_shippriority,
    NULLIF(TRIM(o_comment), '') AS o_comment,
    COALESCE(_op, 'I') AS _op,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY o_orderkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.orders
) AS latest
WHERE _version = 1
