package entitlement

import "github.com/ansinh/ansinh/domain"

// Codes of the starter catalogue, for code and tests that need a known
// program. The catalogue itself is data in the event store; these names only
// refer to what StarterCatalogue seeds.
const (
	SocialAssistanceBase = "SOCIAL_ASSISTANCE_BASE"
	PreferentialStandard = "PREFERENTIAL_STANDARD"

	SocialMonthly     = "SOCIAL_MONTHLY"
	MeritMonthly      = "MERIT_MONTHLY"
	ResistanceOneTime = "RESISTANCE_ONE_TIME"
	MartyrWorship     = "MARTYR_WORSHIP"
	PresidentTetGift  = "PRESIDENT_TET_GIFT"
)

// StarterCatalogue is the catalogue for the programs in DOMAIN.md, as
// commands in the order they must be applied (base levels before the
// programs that name them). Applying it again changes nothing, so a service
// can seed it on every start.
//
// Figures are the ones DOMAIN.md confirms. The one-time resistance allowance
// and the martyr-worship allowance have no default amount: the amount is set
// by each grant (it depends on the person's file), and DOMAIN.md confirms no
// figure. The 2,055,000 VND preferential standard of July 2023 is set by
// Decree 55/2023/ND-CP (DOMAIN.md gives the figure and date, not the decree).
func StarterCatalogue() []CatalogueCommand {
	vnd := domain.VNDAmount
	p := domain.MustPeriod
	return []CatalogueCommand{
		DefineBaseLevel{Code: SocialAssistanceBase, Name: "Mức chuẩn trợ giúp xã hội (social-assistance base level)"},
		SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: p("2021-07"), Amount: vnd(360_000), DecreeRef: "Decree 20/2021/ND-CP"},
		SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: p("2024-07"), Amount: vnd(500_000), DecreeRef: "Decree 76/2024/ND-CP"},

		DefineBaseLevel{Code: PreferentialStandard, Name: "Mức chuẩn trợ cấp ưu đãi người có công (preferential-allowance standard)"},
		SetBaseLevelRate{Code: PreferentialStandard, EffectiveFrom: p("2023-07"), Amount: vnd(2_055_000), DecreeRef: "Decree 55/2023/ND-CP"},
		SetBaseLevelRate{Code: PreferentialStandard, EffectiveFrom: p("2024-07"), Amount: vnd(2_789_000), DecreeRef: "Decree 77/2024/ND-CP"},

		DefineProgram{
			Code: SocialMonthly, Name: "Trợ cấp xã hội hằng tháng (monthly social-protection allowance)", Kind: Monthly,
			Rule:      AmountRule{Kind: BaseTimesCoefficient, BaseLevel: SocialAssistanceBase},
			Reference: "Decree 20/2021/ND-CP; coefficient per group, e.g. 1.5, 2.0, 2.5, 3.0",
		},
		DefineProgram{
			Code: MeritMonthly, Name: "Trợ cấp ưu đãi hằng tháng người có công (monthly preferential allowance)", Kind: Monthly,
			Rule:      AmountRule{Kind: BaseTimesCoefficient, BaseLevel: PreferentialStandard},
			Reference: "Decree 75/2021/ND-CP as amended; relatives of 1/2/3+ martyrs: coefficient 1/2/3",
		},
		DefineProgram{
			Code: ResistanceOneTime, Name: "Trợ cấp một lần người tham gia kháng chiến (one-time resistance allowance)", Kind: OneTime,
			Rule: AmountRule{Kind: Fixed},
		},
		DefineProgram{
			Code: MartyrWorship, Name: "Trợ cấp thờ cúng liệt sĩ (annual martyr-worship allowance)", Kind: Annual,
			Rule: AmountRule{Kind: Fixed},
		},
		DefineProgram{
			Code: PresidentTetGift, Name: "Quà Tết của Chủ tịch nước (President's Tet gift)", Kind: Gift,
			Rule: AmountRule{Kind: Fixed, Tiers: []domain.Money{vnd(600_000), vnd(300_000)}},
		},
	}
}
