# 日本語 — shopper pages of treefort-webpay

## Page chrome

language-name = 日本語
skip-to-content = 本文へスキップ
test-mode = テストモード：実際のお支払いは行われません。

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { "：" }

## Checkout

checkout-title = { $plan }のお申し込み
account = アカウント
# Japanese has only the plural category "other"; [1] is an exact match for n = 1.
every-month =
    { $n ->
        [1] 毎月
       *[other] { $n }か月ごと
    }
every-year =
    { $n ->
        [1] 毎年
       *[other] { $n }年ごと
    }
trial = { $n }日間の無料トライアル
promo = プロモーションコード { $code }
regular-price = 通常価格
due-today = 本日のお支払い
amount-due-label = お支払い金額
then = その後
card-details = カード情報
card-number = カード番号
card-expiry = 有効期限（MM/YY）
card-expiry-placeholder = MM/YY
card-cvc = セキュリティコード
secure-note = カード情報は決済代行会社に直接送信され、このサイトがカード情報を見ることはありません。
pay = 支払って申し込む
start-trial = 無料トライアルを開始
back-to-app = キャンセルして戻る
sandbox-cards = テスト用カード：4242 4242 4242 4242 は決済成功、4000 0000 0000 0002 は決済拒否になります。
declined = カードが拒否されました。お支払いは発生していません。別のカードをお試しください。
invalid-card = カード情報をご確認ください。
promo-exhausted = このプロモーションコードはご利用いただけなくなりました。お支払いは発生していません。
already-subscribed = すでにサブスクリプションをご契約中です。お支払いは発生していません。
in-progress = このお支払いはすでに処理中です。しばらく待ってからページを再読み込みしてください。
expired-title = このリンクは有効期限が切れています
expired-body = アプリに戻って、もう一度やり直してください。
not-found-title = リンクが見つかりません
used-title = このお手続きは完了しています
used-body = このリンクはすでに使用されています。アプリに戻ってご契約内容をご確認ください。
activating-title = お支払いを受け付けました
activating-body = サブスクリプションを有効化しています。このページは自動的に切り替わります。
continue = 続ける

## Billing portal

portal-title = お支払い管理
no-subscriptions = ご契約中のサブスクリプションはありません。
status-trialing = 無料トライアル中
status-active = 有効
status-past-due = お支払い失敗
past-due-detail = 前回のお支払いに失敗しました。{ $date }まで再試行します。ご利用を継続するには、カード情報を更新してください。
next-charge = 次回のお支払い：{ $date }に{ $amount }
plan-change = { $date }に{ $plan }へ変更
resume = サブスクリプションを再開
resumed-ok = サブスクリプションは継続され、期間の終了時に更新されます。
replace-card = カードを変更
card-replaced = カード情報を更新しました。
save-card = カードを保存
promo-then = { $n }回目のお支払いから
switch-title = { $plan }への変更
switch-body = 現在のプラン「{ $current }」は{ $date }まで続きます。その後、「{ $plan }」（{ $price }）が始まります。本日のお支払いはありません。
switch-button = 変更を確定
status-canceled = 解約済み
status-ended = 終了
paid-until = { $date }までお支払い済み
trial-ends = トライアルは{ $date }に終了します
access-until = 解約済み：{ $date }までご利用いただけます
cancel-subscription = サブスクリプションを解約
canceled-ok = サブスクリプションを解約しました。お支払い済みの期間が終わるまでご利用いただけます。
cancel-failed = ただいまサブスクリプションを解約できませんでした。変更は行われていません。もう一度お試しください。
payment-method = お支払い方法
payments = お支払い履歴
no-payments = お支払い履歴はまだありません。
date = 日付
amount = 金額
status = ステータス
paid = 支払い済み
payment-declined = 拒否
error-title = 問題が発生しました
error-body = 二重請求は発生していません。しばらくしてからもう一度お試しください。
card = カード
authenticate-title = お支払いの確認
authenticate-body = ご利用の銀行からこのお支払いの確認を求められています。表示されるウィンドウの手順に従ってください。
confirm-payment = お支払いを確認
confirm-payment-needed = ご利用の銀行から、サブスクリプションの前回のお支払いの確認を求められています。
payment-confirmed = ありがとうございます。お支払いが確認されました。サブスクリプションは継続されます。
refunded = 返金済み
partially-refunded = 一部返金済み
disputed = 異議申し立て中
too-many-attempts = このリンクではお支払いの失敗が多すぎたため、使用できなくなりました。アプリに戻って、もう一度やり直してください。

## Refusals

too-many-requests = お使いのネットワークからのリクエストが多すぎます。しばらく待ってからもう一度お試しください。
cross-site = このフォームは別のサイトから送信されたため、何も行われませんでした。アプリからもう一度リンクを開いてください。
