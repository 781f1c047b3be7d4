// The tables of both backends (migrations/sqlite and migrations/postgres define them alike).
// Only portable SQL types: BigInt, Integer, Text, Bool, Timestamp (UTC).

diesel::table! {
    plans (id) {
        id -> BigInt,
        name -> Text,
        billing_interval -> Text,
        interval_count -> Integer,
        trial_days -> Integer,
        grace_days -> Integer,
        currency -> Text,
        amount -> BigInt,
        divisor -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        features -> Text,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> BigInt,
        kid -> Text,
        algorithm -> Text,
        salt -> Text,
        public_key -> Text,
        created_at -> Timestamp,
        retires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    promo_codes (id) {
        id -> BigInt,
        code -> Text,
        code_normalized -> Text,
        discount_type -> Text,
        percent_off -> Nullable<Integer>,
        amount_off -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        divisor -> Nullable<BigInt>,
        first_time_only -> Bool,
        max_redemptions -> Nullable<Integer>,
        times_redeemed -> Integer,
        expires_at -> Nullable<Timestamp>,
        active -> Bool,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        duration -> Text,
        duration_periods -> Nullable<Integer>,
    }
}

diesel::table! {
    promo_code_plans (promo_code_id, plan_id) {
        promo_code_id -> BigInt,
        plan_id -> BigInt,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        user_id -> Text,
        email -> Text,
        full_name -> Nullable<Text>,
        payment_method_ref -> Nullable<Text>,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        gateway_customer_ref -> Nullable<Text>,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> BigInt,
        user_id -> Text,
        customer_id -> BigInt,
        plan_id -> BigInt,
        promo_code_id -> Nullable<BigInt>,
        treefort_subscription_id -> Nullable<Text>,
        current_period_started_at -> Timestamp,
        current_period_ends_at -> Timestamp,
        trial_ends_at -> Nullable<Timestamp>,
        canceled_at -> Nullable<Timestamp>,
        deactivated_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        billing_anchor_at -> Nullable<Timestamp>,
        periods_paid -> Integer,
        next_action_at -> Nullable<Timestamp>,
        past_due_since -> Nullable<Timestamp>,
        renewal_attempts -> Integer,
        promo_periods_left -> Nullable<Integer>,
        pending_plan_id -> Nullable<BigInt>,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        cancel_requested_at -> Nullable<Timestamp>,
        amount -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        divisor -> Nullable<BigInt>,
        billing_interval -> Nullable<Text>,
        interval_count -> Nullable<Integer>,
    }
}

diesel::table! {
    checkout_sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> Text,
        user_email -> Text,
        user_full_name -> Nullable<Text>,
        locale -> Text,
        plan_id -> BigInt,
        promo_code_id -> Nullable<BigInt>,
        success_url -> Text,
        cancel_url -> Text,
        status -> Text,
        subscription_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        claimed_at -> Nullable<Timestamp>,
        payment_attempts -> Integer,
        gateway_payment_ref -> Nullable<Text>,
        gateway_checks -> Integer,
        next_check_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    portal_sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> Text,
        user_email -> Text,
        locale -> Text,
        back_url -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        customer_id -> BigInt,
        subscription_id -> Nullable<BigInt>,
        checkout_session_id -> Nullable<BigInt>,
        kind -> Text,
        status -> Text,
        amount -> BigInt,
        discount_amount -> BigInt,
        currency -> Text,
        divisor -> BigInt,
        gateway -> Text,
        gateway_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamp,
        refunded_amount -> BigInt,
        refunded_at -> Nullable<Timestamp>,
        disputed_at -> Nullable<Timestamp>,
        dispute_reason -> Nullable<Text>,
    }
}

diesel::table! {
    promo_redemptions (id) {
        id -> BigInt,
        promo_code_id -> BigInt,
        user_id -> Text,
        subscription_id -> BigInt,
        redeemed_at -> Timestamp,
    }
}

diesel::table! {
    treefort_outbox (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        operation -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        dead_at -> Nullable<Timestamp>,
        skipped_at -> Nullable<Timestamp>,
        skipped_by -> Nullable<Text>,
        skip_reason -> Nullable<Text>,
    }
}

diesel::table! {
    gateway_events (id) {
        id -> BigInt,
        gateway -> Text,
        event_id -> Text,
        event_type -> Text,
        object_id -> Nullable<Text>,
        payload -> Text,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
        attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        locked_by -> Nullable<Text>,
    }
}

diesel::table! {
    service_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        key_id -> Text,
        name -> Text,
        scope -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        public_id -> Text,
        event_type -> Text,
        user_id -> Text,
        subscription_id -> Nullable<BigInt>,
        payment_id -> Nullable<BigInt>,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Nullable<Text>,
        secret_salt -> Text,
        previous_secret_salt -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamp>,
        last_success_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> BigInt,
        event_id -> BigInt,
        ordering_key -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        endpoint_id -> BigInt,
        event_id -> BigInt,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        duration_ms -> BigInt,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (id) {
        id -> BigInt,
        api_key_id -> BigInt,
        idem_key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    catalog_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    unrecorded_charges (id) {
        id -> BigInt,
        gateway -> Text,
        gateway_reference -> Text,
        amount -> BigInt,
        currency -> Text,
        divisor -> BigInt,
        reason -> Text,
        created_at -> Timestamp,
        refunded_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(promo_code_plans -> promo_codes (promo_code_id));
diesel::joinable!(subscriptions -> customers (customer_id));
diesel::joinable!(subscriptions -> plans (plan_id));
diesel::joinable!(payments -> customers (customer_id));
diesel::joinable!(treefort_outbox -> subscriptions (subscription_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> events (event_id));

diesel::allow_tables_to_appear_in_same_query!(
    plans,
    promo_codes,
    promo_code_plans,
    customers,
    subscriptions,
    checkout_sessions,
    portal_sessions,
    payments,
    promo_redemptions,
    treefort_outbox,
    gateway_events,
    service_settings,
    api_keys,
    events,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    idempotency_keys,
    catalog_version,
    unrecorded_charges,
    signing_keys,
);

diesel::table! {
    emails (id) {
        id -> BigInt,
        kind -> Text,
        about -> Text,
        user_id -> Text,
        subscription_id -> Nullable<BigInt>,
        payment_id -> Nullable<BigInt>,
        to_address -> Text,
        locale -> Text,
        data -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    email_links (id) {
        id -> BigInt,
        token_hash -> Text,
        email_id -> BigInt,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}
