-- gold.revenue_by_nation_month adds up to the revenue of every order line whose order has
-- a customer: nothing lost or double counted by the joins.
SELECT gold_total, silver_total
FROM (
    SELECT SUM(revenue) AS gold_total FROM gold.revenue_by_nation_month
) AS g
CROSS JOIN (
    SELECT SUM(l.l_extendedprice * (1 - l.l_discount)) AS silver_total
    FROM silver.lineitem AS l
    JOIN silver.orders AS o ON l.l_orderkey = o.o_orderkey
    JOIN silver.customer AS c ON o.o_custkey = c.c_custkey
) AS s
WHERE gold_total IS DISTINCT FROM silver_total
