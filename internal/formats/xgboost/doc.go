// Package xgboost serves XGBoost models from the files Booster.save_model writes,
// in pure Go: the JSON model format and UBJSON (its binary twin, written for
// *.ubj files and by default from XGBoost 2.0). The old binary format
// ("binf...") is refused with a message that says how to re-save the model as
// JSON.
//
// # What is read
//
// Boosters gbtree, dart (each tree scaled by its weight_drop) and gblinear.
// Objectives: reg:squarederror, reg:squaredlogerror, reg:pseudohubererror,
// reg:absoluteerror, reg:logistic, count:poisson, reg:gamma, reg:tweedie,
// binary:logistic, binary:logitraw, binary:hinge, multi:softprob,
// multi:softmax, survival:cox and survival:aft (exp of the margin) and
// rank:pairwise/ndcg/map (the ranking score). base_score is
// stored in the objective's output space (a probability for binary:logistic
// and reg:logistic, a mean for the log-link count:poisson, reg:gamma and
// reg:tweedie) and goes through the inverse link, as XGBoost does;
// binary:logitraw keeps it as a margin, as XGBoost 1.7 does. Trees may have missing-value default branches and categorical
// splits; tree_info assigns each tree to its class (output group).
//
// A model saved after early stopping holds rounds past the best one; they are
// not served. Like XGBClassifier.predict and XGBRegressor.predict (and unlike a
// bare Booster.predict), the model stops at attributes.best_iteration.
//
// Margins are bit-for-bit XGBoost's: inputs are converted to float32, a split
// sends x left when float32(x) < threshold, NaN takes the default branch, and
// leaf values are added to the base margin in float32 in tree order. The
// transformed outputs (sigmoid, softmax, exp) use Go's float64 exp rounded to
// float32 where XGBoost calls the C library's expf; they can differ from
// XGBoost's in the last bit.
//
// # Inputs and outputs
//
// One input "input", FP32 [-1, num_feature] (any numeric datatype is accepted;
// NaN is a missing value; ±Inf is refused, as XGBoost refuses it). Outputs:
//
//	classifiers (binary:*, multi:*): predict       INT64 [-1]  class index
//	                                 predict_proba FP32 [-1, classes]; binary gives [1-p, p]
//	regressors and rankers:          predict       FP32 [-1] (or [-1, targets])
//	every model, last:               margin        FP32 [-1] (or [-1, groups]), the raw score
//
// Feature names are the file's feature_names when it has them, else the
// config's features, else feature1..featureN.
//
// # Which files are XGBoost models
//
// Without a configured format the repository picks a runtime by extension. This
// runtime claims ".ubj" and ".xgb". It does not claim every ".json", which many
// formats use: a JSON model is served when the model's config says
// "format: xgboost", when its name marks it as XGBoost's — "xgboost.json" or
// "*.xgboost.json" (MatchesName) — or when its document opens with the
// "learner" key, as every model save_model writes does, whatever it is called
// (MatchesFile reads the first 64 bytes). Whatever the name, the loader decides
// JSON, UBJSON or the old binary format from the file's first bytes.
package xgboost
