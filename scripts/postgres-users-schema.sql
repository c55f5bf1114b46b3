-- The `users` table of the customers/users product, for running it from PostgreSQL instead of Cosmos DB
-- (docs/postgres.md). Columns follow domains/customers/users/datacontract.yaml; user_id is the key.
--
--   psql "$DATABASE_URL" -f scripts/postgres-users-schema.sql
--
-- The relay role needs REPLICATION, SELECT on the table and, the first time, the right to create the
-- publication (or create the publication here as the table owner, as below).

CREATE TABLE IF NOT EXISTS public.users (
    user_id       uuid          PRIMARY KEY,
    full_name     text          NOT NULL CHECK (char_length(full_name) BETWEEN 3 AND 120),
    cpf           char(11)      NOT NULL UNIQUE CHECK (cpf ~ '^[0-9]{11}$'),
    email         varchar(254)  NOT NULL,
    phone         text          CHECK (phone ~ '^\+55[1-9][0-9]{9,10}$'),
    birth_date    date          NOT NULL,
    state         char(2)       NOT NULL,
    segment       text          NOT NULL CHECK (segment IN ('retail', 'premium', 'private', 'business')),
    kyc_status    text          NOT NULL CHECK (kyc_status IN ('pending', 'approved', 'rejected', 'review')),
    credit_limit  numeric(18,2) NOT NULL CHECK (credit_limit BETWEEN 0 AND 1000000),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now()
);

-- FULL: `before` holds the whole old row, and an UPDATE that leaves a large (TOASTed) value unchanged is
-- completed from it without reading the table again. DEFAULT also works (before = the old key only).
ALTER TABLE public.users REPLICA IDENTITY FULL;

-- The relay creates this itself when its role may; named as the relay names it by default.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'meshkit_customers_users') THEN
        CREATE PUBLICATION meshkit_customers_users FOR TABLE public.users;
    END IF;
END
$$;
