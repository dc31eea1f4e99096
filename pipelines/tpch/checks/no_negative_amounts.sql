-- Money and quantities are never negative, discounts and taxes are fractions (TPC-H 4.2.3).
-- A check fails when it returns rows.
SELECT 'silver.orders' AS source, o_orderkey AS orderkey, NULL AS linenumber
FROM silver.orders
WHERE o_totalprice < 0
UNION ALL
SELECT 'silver.lineitem', l_orderkey, l_linenumber
FROM silver.lineitem
WHERE l_quantity <= 0
    OR l_extendedprice < 0
    OR l_discount NOT BETWEEN 0 AND 1
    OR l_tax NOT BETWEEN 0 AND 1
